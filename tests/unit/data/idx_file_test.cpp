#include "data/idx_file.h"

#include "data/errors.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <zlib.h>

namespace vit::data {
namespace {

using vit::testing::TempDir;
using vit::testing::write_file;

std::string idx_bytes(const std::vector<uint32_t>& dims, const std::string& body) {
  std::string bytes = {0, 0, 8, static_cast<char>(dims.size())};
  for (const auto dim : dims) {
    for (const int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<char>((dim >> shift) & 0xff));
  }
  return bytes + body;
}

void write_gzip(const std::filesystem::path& file, const std::string& contents) {
  gzFile out = gzopen(file.c_str(), "wb");
  gzwrite(out, contents.data(), static_cast<unsigned>(contents.size()));
  gzclose(out);
}

std::string error_of(const std::filesystem::path& file) {
  try {
    read_idx_file(file);
  } catch (const DataError& error) {
    return error.what();
  }
  return "";
}

TEST(IdxFile, ReadsRawAndGzipImages) {
  TempDir dir;
  std::string body;
  for (int i = 0; i < 2 * 3 * 4; ++i) body.push_back(static_cast<char>(i * 10));
  const auto contents = idx_bytes({2, 3, 4}, body);
  write_file(dir / "images.idx", contents);
  write_gzip(dir / "images.idx.gz", contents);
  for (const auto* name : {"images.idx", "images.idx.gz"}) {
    const auto images = read_idx_file(dir / name);
    ASSERT_EQ(images.sizes(), (std::vector<int64_t>{2, 3, 4})) << name;
    EXPECT_EQ(images.scalar_type(), torch::kUInt8);
    EXPECT_EQ(images.index({1, 2, 3}).item<int>(), 230);
    EXPECT_EQ(images.index({0, 0, 1}).item<int>(), 10);
  }
}

TEST(IdxFile, RejectsBadMagicTruncationAndTrailingBytes) {
  TempDir dir;
  write_file(dir / "magic.idx", std::string("\x00\x00\x0d\x01\x00\x00\x00\x01x", 9));
  EXPECT_NE(error_of(dir / "magic.idx").find("magic.idx: bad IDX magic"), std::string::npos);
  write_file(dir / "short.idx", idx_bytes({10}, "abc"));
  EXPECT_NE(error_of(dir / "short.idx").find("short.idx: truncated: header declares 10 bytes"), std::string::npos);
  write_file(dir / "long.idx", idx_bytes({2}, "abc"));
  EXPECT_NE(error_of(dir / "long.idx").find("more data than the header declares"), std::string::npos);
  write_file(dir / "header.idx", std::string("\x00\x00\x08\x03\x00\x00", 6));
  EXPECT_NE(error_of(dir / "header.idx").find("truncated IDX header"), std::string::npos);
  write_file(dir / "huge.idx", idx_bytes({0xffffffffu, 0xffffffffu, 0xffffffffu}, ""));
  EXPECT_NE(error_of(dir / "huge.idx").find("implausibly large"), std::string::npos);
  write_file(dir / "empty.idx", "");
  EXPECT_NE(error_of(dir / "empty.idx").find("too short"), std::string::npos);
  EXPECT_NE(error_of(dir / "missing.idx").find("cannot open"), std::string::npos);
}

TEST(IdxFile, FashionMnistFirstTrainingLabelIsNine) {
  const std::filesystem::path labels = "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(labels)) GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const auto tensor = read_idx_file(labels);
  ASSERT_EQ(tensor.sizes(), (std::vector<int64_t>{60000}));
  EXPECT_EQ(tensor[0].item<int>(), 9);
  const auto images = read_idx_file("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(images.sizes(), (std::vector<int64_t>{10000, 28, 28}));
}

}  // namespace
}  // namespace vit::data
