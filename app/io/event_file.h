#pragma once

// TensorBoard's event files, written and read without TensorFlow: TFRecord framing (a length,
// the masked CRC-32C of the length, the payload, the masked CRC-32C of the payload) around
// `Event` protocol buffers, encoded by hand (only the fields scalars and images need).

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace vit::app {

// CRC-32C (Castagnoli), and the masked form TFRecord stores so that a CRC of data holding CRCs
// does not degenerate.
uint32_t crc32c(const void* data, size_t size);
uint32_t masked_crc32c(const void* data, size_t size);

// What an event carries that decides whether it stays when a resumed run trims older files.
struct EventHeader {
  int64_t step = 0;
  std::vector<std::string> tags;  // the summary values' tags; empty for the file_version event
};

// One event file of a run, events.out.tfevents.<seconds>.<host>.<pid>.<n>, opened by a new run
// and by every resume (TensorBoard reads all files of a directory as one stream). Each record is
// one write(), so a killed process leaves whole records; a failing disk stops the event log with
// a warning, not the training.
class EventFileWriter {
 public:
  explicit EventFileWriter(const std::filesystem::path& dir);
  ~EventFileWriter();
  EventFileWriter(const EventFileWriter&) = delete;
  EventFileWriter& operator=(const EventFileWriter&) = delete;

  void add_scalar(const std::string& tag, int64_t step, double value);
  // `png`: an encoded PNG image of the given size and channels (1 grey, 3 RGB, 4 RGBA).
  void add_image(const std::string& tag, int64_t step, const std::string& png, int height, int width, int channels);
  const std::filesystem::path& file() const { return file_; }

 private:
  void write_event(const std::string& event);

  std::filesystem::path file_;
  int fd_ = -1;
};

// Whether `name` is an event file name (TensorBoard's test: it contains "tfevents").
bool is_event_file(const std::string& name);
// The event payloads of a file in order, each record's CRCs checked; reading stops at a torn or
// damaged record (a run killed mid-write), which is left out.
std::vector<std::string> read_event_records(const std::filesystem::path& file);
EventHeader parse_event_header(const std::string& event);
// Rewrites, atomically, each event file in `dir` that holds an event `keep` rejects, without the
// rejected events.
void filter_event_files(const std::filesystem::path& dir, const std::function<bool(const EventHeader&)>& keep);

}  // namespace vit::app
