// The bad-input suite: every case runs the real `vit` binary on broken input and asserts the exit
// code, the one-line message naming the file, key or line, and that no existing file changed.
#include "support/robustness_support.h"
#include "support/run_support.h"

#include <gtest/gtest.h>
#include <unistd.h>
#include <opencv2/imgcodecs.hpp>

#include <cstdint>
#include <random>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

std::string png_bytes(int size) {
  std::vector<uint8_t> bytes;
  cv::imencode(".png", cv::Mat(size, size, CV_8UC1, cv::Scalar(128)), bytes);
  return {bytes.begin(), bytes.end()};
}

std::string big_endian(uint32_t value) {
  return {static_cast<char>(value >> 24), static_cast<char>(value >> 16), static_cast<char>(value >> 8),
          static_cast<char>(value)};
}

// `vit data bench` over the validation split of dir/data.yaml, one image per batch so that every
// validation image is decoded.
CommandResult rerun_bench_val(const TempDir& dir) {
  return run_vit("data bench --config " + (dir / "data.yaml").string() +
                 " --split val --batch-size 1 --batches 20 --workers 2");
}

// Writes dir/data.yaml, a data set whose validation split is `val_source`, and benches it.
CommandResult bench_val(const TempDir& dir, const std::string& val_source, const std::string& more_data_yaml = "") {
  write_halves_dataset(dir / "train", 4, 1);
  write_file(dir / "data.yaml",
             "model: {image_size: 16, patch_size: 4, in_chans: 1, num_classes: 2, dim: 32, depth: 1,"
             " heads: 2}\n"
             "data:\n  train: {source: imagefolder, path: " +
                 (dir / "train").string() + "}\n  val: " + val_source + "\n" + more_data_yaml);
  return rerun_bench_val(dir);
}

// A valid image folder with one extra file `name` holding `bytes` in class "left".
CommandResult bench_folder_with(const TempDir& dir, const std::string& name, const std::string& bytes) {
  write_halves_dataset(dir / "val", 2, 3);
  write_file(dir / "val" / "left" / name, bytes);
  return bench_val(dir, "{source: imagefolder, path: " + (dir / "val").string() + "}");
}

TEST(BadImages, TruncatedZeroByteWrongFormatAndHugeImagesNameTheFile) {
  const auto png = png_bytes(16);
  auto huge = png;
  for (const int offset : {16, 20}) huge.replace(offset, 4, big_endian(100000));  // IHDR width, height
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"truncated.png", png.substr(0, png.size() / 2)},
      {"empty.png", ""},
      {"text.png", "this is not an image\n"},
      {"huge.png", huge},
  };
  for (const auto& [name, bytes] : cases) {
    TempDir dir;
    const auto result = bench_folder_with(dir, name, bytes);
    expect_clean_failure(result, 1, {(dir / "val" / "left" / name).string()});
  }
}

TEST(BadImages, SymlinkLoopAndUnreadableFilesNameTheFile) {
  {
    TempDir dir;
    write_halves_dataset(dir / "val", 2, 3);
    fs::create_symlink(dir / "val" / "left" / "b.png", dir / "val" / "left" / "a.png");
    fs::create_symlink(dir / "val" / "left" / "a.png", dir / "val" / "left" / "b.png");
    const auto result = bench_val(dir, "{source: imagefolder, path: " + (dir / "val").string() + "}");
    expect_clean_failure(result, 1, {(dir / "val" / "left").string()});
  }
  {
    // A dangling link is unreadable for every user, root included.
    TempDir dir;
    write_halves_dataset(dir / "val", 2, 3);
    fs::create_symlink(dir / "gone.png", dir / "val" / "left" / "dangling.png");
    const auto result = bench_val(dir, "{source: imagefolder, path: " + (dir / "val").string() + "}");
    expect_clean_failure(result, 1, {"dangling.png"});
  }
  if (::geteuid() != 0) {  // root reads files whatever their mode
    TempDir dir;
    const auto result = bench_folder_with(dir, "secret.png", png_bytes(16));
    ASSERT_EQ(result.exit_code, 0) << result.err;
    fs::permissions(dir / "val" / "left" / "secret.png", fs::perms::none);
    expect_clean_failure(rerun_bench_val(dir), 1, {"secret.png"});
  }
}

TEST(BadCsv, MalformedLinesMissingFilesAndOutOfRangeOrAmbiguousLabelsNameTheLine) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"left/0.png,0\nleft/1.png\n", "val.csv:2"},
      {"left/0.png,0\nleft/missing.png,1\n", "val.csv:2"},
      {"left/0.png,0\nleft/1.png,1\nright/0.png,7\n", "val.csv:3: label 7 is out of range for 2 classes"},
      {"", "val.csv: the list has no entries"},
      // One kind of label per list, and nothing that merely looks like an index.
      {"left/0.png,0\nright/0.png,right\n",
       "val.csv:2: label 'right' is a class name but line 1's label is a class index"},
      {"left/0.png,left\nright/0.png,1\n", "val.csv:2: label '1' is a class index but line 1's label is a class name"},
      {"left/0.png,0\nright/0.png,1.0\n", "val.csv:2: label '1.0' reads as a number"},
      {"left/0.png,0\nright/0.png,99999999999999999999\n", "val.csv:2: label '99999999999999999999' reads as a number"},
      {"left/0.png,0\nright/0.png,01\n", "val.csv:2: label '01' reads as a number"},
  };
  for (const auto& [list, message] : cases) {
    TempDir dir;
    write_halves_dataset(dir / "val", 2, 3);
    write_file(dir / "val" / "val.csv", list);
    const auto result = bench_val(dir, "{source: csv, path: " + (dir / "val" / "val.csv").string() + "}",
                                  "  class_names: [left, right]\n");
    expect_clean_failure(result, 1, {message});
  }
}

TEST(BadIdx, BadMagicShortDataAndMismatchedCountsNameTheFile) {
  const auto images = [](uint32_t magic, uint32_t count, size_t pixels) {
    return big_endian(magic) + big_endian(count) + big_endian(16) + big_endian(16) + std::string(pixels, '\x40');
  };
  const auto labels = [](uint32_t count, size_t bytes) {
    return big_endian(0x801) + big_endian(count) + std::string(bytes, '\x01');
  };
  struct Case {
    std::string images, labels, file, message;
  };
  const std::vector<Case> cases = {
      {images(0x1234, 2, 512), labels(2, 2), "t10k-images-idx3-ubyte", "magic"},
      {images(0x803, 2, 300), labels(2, 2), "t10k-images-idx3-ubyte", ""},
      {images(0x803, 2, 512), labels(3, 3), "t10k", "3"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    fs::create_directories(dir / "idx");
    write_file(dir / "idx" / "t10k-images-idx3-ubyte", c.images);
    write_file(dir / "idx" / "t10k-labels-idx1-ubyte", c.labels);
    const auto before = snapshot(dir / "idx");
    const auto result = bench_val(dir, "{source: idx, path: " + (dir / "idx").string() + ", split: test}");
    expect_clean_failure(result, 1, {(dir / "idx").string(), c.file, c.message});
    expect_unchanged(before);
  }
}

TEST(BadConfig, EveryMistakeIsAUsageErrorNamingFileLineAndKey) {
  struct Case {
    std::string yaml, message;
  };
  const std::vector<Case> cases = {
      {"model: {dim: 64\ntrain: [\n", "bad.yaml:"},
      {"train:\n  epocs: 3\n", "bad.yaml:2: unknown key 'train.epocs' (did you mean 'train.epochs'?)"},
      {"train:\n  batch_size: many\n", "bad.yaml:2"},
      {"train:\n  batch_size: 0\n", "train.batch_size"},
      {"model:\n  image_size: -32\n", "model.image_size"},
      {"train:\n  lr: .nan\n", "train.lr"},
      {"train:\n  lr: .inf\n", "train.lr"},
      {"model:\n  dim: 100\n  heads: 3\n", "not divisible by num_heads 3"},
      {"model:\n  image_size: 30\n  patch_size: 4\n", "not divisible"},
  };
  for (const auto& c : cases) {
    TempDir dir;
    write_file(dir / "bad.yaml", c.yaml);
    const auto before = snapshot(dir.path());
    const auto result =
        run_vit("train --config " + (dir / "bad.yaml").string() + " --output " + (dir / "run").string());
    expect_clean_failure(result, 2, {c.message});
    EXPECT_FALSE(fs::exists(dir / "run")) << "a run directory was created for " << c.yaml;
    expect_unchanged(before);
  }
}

// One trained run shared by the checkpoint and export cases.
class BadCheckpoint : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const auto trained = run_vit("train --config " + tiny_config(*dir_) + " --set train.epochs=1 --output " +
                                 (dir_->path() / "run").string());
    ASSERT_EQ(trained.exit_code, 0) << trained.err;
    checkpoint_ = read_file(dir_->path() / "run" / "last.ckpt");
  }
  static void TearDownTestSuite() { delete dir_; }

  // `vit eval`, `vit export`, `vit predict` and `vit train --resume` on `file`.
  static void expect_every_reader_refuses(const fs::path& file, const std::string& message) {
    const auto image = (dir_->path() / "val" / "left" / "0.png").string();
    const auto before = snapshot(file.parent_path());
    expect_clean_failure(run_vit("eval --checkpoint " + file.string()), 1, {file.string(), message});
    expect_clean_failure(
        run_vit("export --checkpoint " + file.string() + " --output " + (file.parent_path() / "model.pt").string()), 1,
        {file.string(), message});
    expect_clean_failure(run_vit("predict --model " + file.string() + " " + image), 1, {file.string(), message});
    expect_clean_failure(run_vit("train --resume " + file.string()), 1, {file.string(), message});
    expect_unchanged(before);
    EXPECT_FALSE(fs::exists(file.parent_path() / "model.pt"));
  }

  static inline TempDir* dir_ = nullptr;
  static inline std::string checkpoint_;
};

TEST_F(BadCheckpoint, TruncatedAndRandomBytesAreNotReadable) {
  TempDir dir;
  for (const size_t size : {size_t{0}, size_t{100}, checkpoint_.size() / 2, checkpoint_.size() - 1}) {
    write_file(dir / "cut.ckpt", checkpoint_.substr(0, size));
    expect_every_reader_refuses(dir / "cut.ckpt", "not a readable vitcpp checkpoint");
  }
  std::mt19937 random(7);
  std::string noise(4096, '\0');
  for (auto& byte : noise) byte = static_cast<char>(random());
  write_file(dir / "noise.ckpt", noise);
  expect_every_reader_refuses(dir / "noise.ckpt", "not a readable vitcpp checkpoint");
}

TEST_F(BadCheckpoint, NewerFormatVersionAsksForAnUpgrade) {
  TempDir dir;
  auto future = checkpoint_;
  future[future.size() - 16] = 99;  // the trailer's little-endian format version
  write_file(dir / "future.ckpt", future);
  expect_every_reader_refuses(dir / "future.ckpt", "checkpoint format version 99 is newer");
}

TEST_F(BadCheckpoint, OneDamagedByteFailsTheChecksum) {
  TempDir dir;
  auto damaged = checkpoint_;
  damaged[damaged.size() / 3] ^= 0x10;
  write_file(dir / "damaged.ckpt", damaged);
  expect_every_reader_refuses(dir / "damaged.ckpt", "checksum mismatch");
}

TEST_F(BadCheckpoint, WeightsOfAnotherArchitectureDoNotLoad) {
  TempDir dir;
  write_file(dir / "good.ckpt", checkpoint_);
  const auto before = snapshot(dir.path());
  // Refused before any weight is read: the architecture is the checkpoint's.
  for (const auto* assignment : {"model.dim=48", "model.depth=3", "model.num_classes=5"}) {
    const std::string key = std::string(assignment).substr(0, std::string(assignment).find('='));
    const auto change = std::string(" --set ") + assignment;
    expect_clean_failure(run_vit("eval --checkpoint " + (dir / "good.ckpt").string() + change), 2,
                         {"good.ckpt", key, "cannot be changed"});
    expect_clean_failure(run_vit("train --resume " + (dir / "good.ckpt").string() + change), 2, {"--resume: " + key});
  }
  expect_unchanged(before);
}

TEST_F(BadCheckpoint, ExportIntoAMissingReadOnlyOrFileFolderKeepsExistingFiles) {
  const auto checkpoint = (dir_->path() / "run" / "last.ckpt").string();
  TempDir dir;
  write_file(dir / "model.pt", "an earlier export");
  write_file(dir / "not_a_folder", "");
  const auto before = snapshot(dir.path());
  expect_clean_failure(
      run_vit("export --checkpoint " + checkpoint + " --output " + (dir / "missing" / "m.pt").string()), 2,
      {(dir / "missing").string(), "does not exist"});
  expect_clean_failure(
      run_vit("export --checkpoint " + checkpoint + " --output " + (dir / "not_a_folder" / "m.pt").string()), 2,
      {"not_a_folder"});
  // /proc refuses new files even to root: a read-only folder wherever the tests run.
  expect_clean_failure(run_vit("export --checkpoint " + checkpoint + " --output /proc/vit_model.pt"), 1,
                       {"/proc/vit_model.pt"});
  // A checkpoint that cannot be read leaves an existing export alone.
  write_file(dir / "noise.ckpt", "noise");
  expect_clean_failure(
      run_vit("export --checkpoint " + (dir / "noise.ckpt").string() + " --output " + (dir / "model.pt").string()), 1,
      {"noise.ckpt"});
  expect_unchanged(before);
}

}  // namespace
}  // namespace vit::testing
