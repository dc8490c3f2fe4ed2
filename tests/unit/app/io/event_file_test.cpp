#include "app/io/event_file.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <fstream>

namespace vit::app {
namespace {

namespace fs = std::filesystem;

std::vector<fs::path> event_files(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (is_event_file(entry.path().filename().string())) files.push_back(entry.path());
  }
  return files;
}

TEST(EventFile, Crc32cMatchesTheCastagnoliCheckValues) {
  EXPECT_EQ(crc32c("123456789", 9), 0xE3069283u);  // the standard check value of CRC-32C
  EXPECT_EQ(crc32c("", 0), 0u);
  const std::string zeros(32, '\0');
  EXPECT_EQ(crc32c(zeros.data(), zeros.size()), 0x8A9136AAu);  // RFC 3720, B.4
  const uint32_t crc = crc32c("123456789", 9);
  EXPECT_EQ(masked_crc32c("123456789", 9), ((crc >> 15) | (crc << 17)) + 0xA282EAD8u);
}

TEST(EventFile, WrittenEventsReadBackWithTheirStepsAndTags) {
  testing::TempDir dir;
  fs::path file;
  {
    EventFileWriter writer(dir.path());
    file = writer.file();
    writer.add_scalar("train/loss", 7, 0.25);
    writer.add_image("val/confusion", 300, std::string(1000, 'x'), 10, 20, 3);
  }
  EXPECT_EQ(file.parent_path(), dir.path());
  EXPECT_EQ(file.filename().string().rfind("events.out.tfevents.", 0), 0u);
  const auto records = read_event_records(file);
  ASSERT_EQ(records.size(), 3u);
  EXPECT_NE(records[0].find("brain.Event:2"), std::string::npos);
  EXPECT_TRUE(parse_event_header(records[0]).tags.empty());
  const auto scalar = parse_event_header(records[1]);
  EXPECT_EQ(scalar.step, 7);
  EXPECT_EQ(scalar.tags, std::vector<std::string>{"train/loss"});
  const auto image = parse_event_header(records[2]);
  EXPECT_EQ(image.step, 300);  // a two-byte varint
  EXPECT_EQ(image.tags, std::vector<std::string>{"val/confusion"});
}

TEST(EventFile, ReadingStopsBeforeATornOrDamagedRecord) {
  testing::TempDir dir;
  fs::path file;
  {
    EventFileWriter writer(dir.path());
    file = writer.file();
    for (int step = 1; step <= 3; ++step) writer.add_scalar("train/loss", step, step);
  }
  const auto whole = testing::read_file(file);
  testing::write_file(file, whole.substr(0, whole.size() - 5));  // killed mid-record
  EXPECT_EQ(read_event_records(file).size(), 3u);
  // Killed right after a record's length and its CRC (12 of an empty record's 16 bytes): found by
  // fuzz_event_file reading 4 bytes past the end.
  std::string framing(8, '\0');
  const uint32_t length_crc = masked_crc32c(framing.data(), 8);
  framing.append(reinterpret_cast<const char*>(&length_crc), 4);
  testing::write_file(file, whole + framing);
  EXPECT_EQ(read_event_records(file).size(), 4u);
  auto damaged = whole;
  damaged[damaged.size() - 10] ^= 1;  // a flipped bit in the last payload
  testing::write_file(file, damaged);
  EXPECT_EQ(read_event_records(file).size(), 3u);
}

TEST(EventFile, FilteringRewritesOnlyFilesThatLoseEvents) {
  testing::TempDir dir;
  {
    EventFileWriter first(dir.path());
    EventFileWriter second(dir.path());
    for (int step = 1; step <= 4; ++step) first.add_scalar("train/loss", step, step);
    second.add_scalar("train/loss", 1, 1.0);
  }
  const auto files = event_files(dir.path());
  ASSERT_EQ(files.size(), 2u);
  filter_event_files(dir.path(), [](const EventHeader& event) { return event.step <= 2; });
  size_t events = 0;
  for (const auto& file : files) {
    for (const auto& record : read_event_records(file)) {
      EXPECT_LE(parse_event_header(record).step, 2);
      ++events;
    }
  }
  EXPECT_EQ(events, 2u + 2u + 1u);  // two headers, steps 1 and 2, and the second file's step 1
}

}  // namespace
}  // namespace vit::app
