#include "app/io/event_file.h"

#include "app/io/byte_order.h"
#include "app/io/file_util.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <type_traits>

namespace vit::app {
namespace {

// Protocol buffer wire types, and the field numbers of tensorboard/compat/proto/event.proto and
// summary.proto that vitcpp writes.
enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };
namespace event_field {
constexpr uint32_t kWallTime = 1, kStep = 2, kFileVersion = 3, kSummary = 5;
}
namespace summary_field {
constexpr uint32_t kValue = 1;
}
namespace value_field {
constexpr uint32_t kTag = 1, kSimpleValue = 2, kImage = 4;
}
namespace image_field {
constexpr uint32_t kHeight = 1, kWidth = 2, kColorspace = 3, kEncoded = 4;
}

const std::array<uint32_t, 256>& crc32c_table() {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t crc = i;
      for (int bit = 0; bit < 8; ++bit) crc = (crc >> 1) ^ ((crc & 1u) != 0 ? 0x82F63B78u : 0u);
      t[i] = crc;
    }
    return t;
  }();
  return table;
}

void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

// A fixed-width field (an integer, or a float's or double's bits) in little-endian order.
template <typename T>
void put_little_endian(std::string& out, T value) {
  static_assert(sizeof(T) == 4 || sizeof(T) == 8, "protobuf's fixed fields are 32 or 64 bits");
  std::conditional_t<sizeof(T) == 8, uint64_t, uint32_t> bits = 0;
  std::memcpy(&bits, &value, sizeof(T));
  append_le(out, bits, sizeof(T));
}

void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (uint64_t{field} << 3) | type); }

void put_bytes(std::string& out, uint32_t field, const std::string& bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_integer(std::string& out, uint32_t field, int64_t value) {
  put_key(out, field, kVarint);
  put_varint(out, static_cast<uint64_t>(value));
}

void put_wall_time(std::string& out) {
  put_key(out, event_field::kWallTime, kFixed64);
  put_little_endian(out, std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
}

std::string event(int64_t step, const std::string& summary) {
  std::string out;
  put_wall_time(out);
  if (step != 0) put_integer(out, event_field::kStep, step);  // proto3 leaves out default values
  put_bytes(out, event_field::kSummary, summary);
  return out;
}

std::string summary_of(const std::string& tag, const std::function<void(std::string&)>& put_value) {
  std::string value;
  put_bytes(value, value_field::kTag, tag);
  put_value(value);
  std::string summary;
  put_bytes(summary, summary_field::kValue, value);
  return summary;
}

std::string record(const std::string& payload) {
  std::string out;
  const uint64_t length = payload.size();
  put_little_endian(out, length);
  put_little_endian(out, masked_crc32c(out.data(), sizeof(length)));
  out += payload;
  put_little_endian(out, masked_crc32c(payload.data(), payload.size()));
  return out;
}

// A cursor over protocol buffer bytes; `ok` turns false at the first malformed field.
struct Reader {
  const char* at;
  const char* end;
  bool ok = true;

  bool done() const { return !ok || at >= end; }
  uint64_t varint() {
    uint64_t value = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (at >= end) break;
      const auto byte = static_cast<uint8_t>(*at++);
      value |= uint64_t{byte & 0x7Fu} << shift;
      if ((byte & 0x80u) == 0) return value;
    }
    ok = false;
    return 0;
  }
  std::string bytes() {
    const uint64_t size = varint();
    if (!ok || size > static_cast<uint64_t>(end - at)) {
      ok = false;
      return {};
    }
    std::string out(at, static_cast<size_t>(size));
    at += size;
    return out;
  }
  void skip(WireType type) {
    const size_t widths[] = {0, 8, 0, 0, 0, 4};
    if (type == kVarint) {
      varint();
    } else if (type == kLengthDelimited) {
      bytes();
    } else if ((type == kFixed64 || type == kFixed32) && widths[type] <= static_cast<size_t>(end - at)) {
      at += widths[type];
    } else {
      ok = false;
    }
  }
  // Calls `on_field(field, type)`, which reads the value or leaves it (then it is skipped).
  void fields(const std::function<bool(uint32_t field, WireType type)>& on_field) {
    while (!done()) {
      const uint64_t key = varint();
      if (!ok) return;
      const auto field = static_cast<uint32_t>(key >> 3);
      const auto type = static_cast<WireType>(key & 7u);
      if (!on_field(field, type)) skip(type);
    }
  }
};

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace

uint32_t crc32c(const void* data, size_t size) {
  const auto& table = crc32c_table();
  const auto* bytes = static_cast<const uint8_t*>(data);
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ bytes[i]) & 0xFFu] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t masked_crc32c(const void* data, size_t size) {
  const uint32_t crc = crc32c(data, size);
  return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u;
}

EventFileWriter::EventFileWriter(const std::filesystem::path& dir) {
  // Two writers of one process in one second (a test resuming at once) still get two files.
  static std::atomic<int> opened{0};
  const auto seconds =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  file_ = dir / fmt::format("events.out.tfevents.{}.{}.{}.{}", seconds, host_name(), ::getpid(), opened++);
  fd_ = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw std::runtime_error(file_.string() + ": cannot create the TensorBoard event file: " + std::strerror(errno));
  }
  std::string header;
  put_wall_time(header);
  put_bytes(header, event_field::kFileVersion, "brain.Event:2");
  write_event(header);
}

EventFileWriter::~EventFileWriter() {
  if (fd_ >= 0) ::close(fd_);
}

void EventFileWriter::add_scalar(const std::string& tag, int64_t step, double value) {
  write_event(event(step, summary_of(tag, [&](std::string& out) {
                      put_key(out, value_field::kSimpleValue, kFixed32);
                      put_little_endian(out, static_cast<float>(value));
                    })));
}

void EventFileWriter::add_image(const std::string& tag, int64_t step, const std::string& png, int height, int width,
                                int channels) {
  std::string image;
  put_integer(image, image_field::kHeight, height);
  put_integer(image, image_field::kWidth, width);
  put_integer(image, image_field::kColorspace, channels);
  put_bytes(image, image_field::kEncoded, png);
  write_event(event(step, summary_of(tag, [&](std::string& out) { put_bytes(out, value_field::kImage, image); })));
}

void EventFileWriter::write_event(const std::string& event) {
  if (fd_ < 0) return;
  const auto bytes = record(event);
  if (::write(fd_, bytes.data(), bytes.size()) != static_cast<ssize_t>(bytes.size())) {
    spdlog::warn("{}: {}; no more TensorBoard events are written", file_.string(), std::strerror(errno));
    ::close(fd_);
    fd_ = -1;
  }
}

bool is_event_file(const std::string& name) { return name.find("tfevents") != std::string::npos; }

std::vector<std::string> read_event_records(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> records;
  size_t at = 0;
  while (bytes.size() - at >= 16) {  // a record is at least its framing: length, CRC, (payload,) CRC
    const auto* framing = reinterpret_cast<const uint8_t*>(bytes.data() + at);
    const uint64_t length = get_le(framing, 8);
    if (get_le(framing + 8, 4) != masked_crc32c(framing, 8) || length > bytes.size() - at - 16) break;
    const char* payload = bytes.data() + at + 12;
    if (get_le(framing + 12 + length, 4) != masked_crc32c(payload, length)) break;
    records.emplace_back(payload, length);
    at += 16 + length;
  }
  return records;
}

EventHeader parse_event_header(const std::string& event) {
  EventHeader header;
  Reader reader{event.data(), event.data() + event.size()};
  reader.fields([&](uint32_t field, WireType type) {
    if (field == event_field::kStep && type == kVarint) {
      header.step = static_cast<int64_t>(reader.varint());
      return true;
    }
    if (field != event_field::kSummary || type != kLengthDelimited) return false;
    const auto summary = reader.bytes();
    Reader values{summary.data(), summary.data() + summary.size()};
    values.fields([&](uint32_t value_number, WireType value_type) {
      if (value_number != summary_field::kValue || value_type != kLengthDelimited) return false;
      const auto value = values.bytes();
      Reader tags{value.data(), value.data() + value.size()};
      tags.fields([&](uint32_t tag_number, WireType tag_type) {
        if (tag_number != value_field::kTag || tag_type != kLengthDelimited) return false;
        header.tags.push_back(tags.bytes());
        return true;
      });
      return true;
    });
    return true;
  });
  return header;
}

void filter_event_files(const std::filesystem::path& dir, const std::function<bool(const EventHeader&)>& keep) {
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (!entry.is_regular_file() || !is_event_file(entry.path().filename().string())) continue;
    std::string kept;
    for (const auto& event : read_event_records(entry.path())) {
      if (keep(parse_event_header(event))) kept += record(event);
    }
    // Also rewritten when only a torn last record (a killed run) made it longer.
    if (kept.size() != entry.file_size(error)) write_text_atomically(entry.path(), kept);
  }
}

}  // namespace vit::app
