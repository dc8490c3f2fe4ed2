#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace vit::app {

// Receives the bytes of a file in order.
using ByteSink = std::function<void(const void* data, size_t size)>;
// Streams the new contents that `produce` writes into the sink to a temporary beside `file`,
// flushes them to disk and renames them over `file`: readers see the old file or the new one,
// never a torn one. On any failure the temporary is removed, `file` is untouched, and
// std::runtime_error names `file`. The sink never fails towards the producer (LibTorch's zip
// writer aborts the process when a write fails and its destructor retries); the first write error
// is thrown once `produce` returns.
void write_stream_atomically(const std::filesystem::path& file, const std::function<void(const ByteSink&)>& produce);
// write_stream_atomically for text.
void write_text_atomically(const std::filesystem::path& file, const std::string& text);
// Removes the temporary that the writers above are writing right now, if any; safe to call from a
// signal handler that is about to end the process.
void remove_active_temporary();
// Removes the temporaries that the writers above leave in `folder` when their process is killed
// mid-write (those of this process excepted).
void remove_stale_temporaries(const std::filesystem::path& folder);

// Throws ConfigError when `output` (the value of `option`) names the existing file `input`: a
// command must not write over what it reads.
void refuse_overwriting_input(const std::filesystem::path& output, const std::filesystem::path& input,
                              const std::string& option);

// A fresh, private directory under the system's temporary folder, removed with its contents when
// the object goes away.
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(const std::string& prefix);
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

}  // namespace vit::app
