#pragma once

#include <filesystem>
#include <functional>
#include <string>

namespace vit::app {

// Calls write(temporary) to produce the new contents beside `file`, flushes them to disk and
// renames them over `file`: readers see the old file or the new one, never a torn one. On any
// failure the temporary is removed, `file` is untouched, and std::runtime_error names `file`.
void write_atomically(const std::filesystem::path& file,
                      const std::function<void(const std::filesystem::path& temporary)>& write);
// write_atomically for text.
void write_text_atomically(const std::filesystem::path& file, const std::string& text);

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
