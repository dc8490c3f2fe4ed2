#include "data/csv_list.h"
#include "data/errors.h"
#include "data/image_file.h"
#include "data/image_folder.h"
#include "data/subset.h"
#include "data/tensor_dataset.h"
#include "support/data_test_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <fstream>
#include <set>
#include <sstream>

namespace vit::data {
namespace {

using vit::testing::TempDir;
using vit::testing::write_file;

template <typename F>
std::string data_error(F&& action) {
  try {
    action();
  } catch (const DataError& error) {
    return error.what();
  }
  return "";
}

TEST(ImageFolder, ClassesSortedByNameGetIndices) {
  TempDir dir;
  vit::testing::write_image_folder(dir.path(), {"zebra", "apple", "mango"}, 2);
  ImageFolderDataset dataset(dir.path(), 1'000'000);
  EXPECT_EQ(dataset.class_names(), (std::vector<std::string>{"apple", "mango", "zebra"}));
  ASSERT_EQ(dataset.size(), 6u);
  EXPECT_EQ(dataset.label(0), 0);
  EXPECT_EQ(dataset.label(2), 1);
  EXPECT_EQ(dataset.label(5), 2);
  EXPECT_NE(dataset.describe(5).find("zebra"), std::string::npos);
}

TEST(ImageFolder, DecodesToRgbOrGrey) {
  TempDir dir;
  vit::testing::write_image_folder(dir.path(), {"a"}, 1, ".png", 12);
  ImageFolderDataset dataset(dir.path(), 1'000'000);
  const auto rgb = dataset.load(0, 3);
  ASSERT_EQ(rgb.channels(), 3);
  // pattern_image stores (x*7, y*11, 100) as OpenCV's B, G, R: RGB order puts 100 first.
  EXPECT_EQ(rgb.at<cv::Vec3b>(2, 3), cv::Vec3b(100, 22, 21));
  const auto grey = dataset.load(0, 1);
  EXPECT_EQ(grey.channels(), 1);
  EXPECT_EQ(grey.rows, 12);
}

TEST(ImageFolder, BadRootsAndClassFoldersAreErrors) {
  TempDir dir;
  EXPECT_NE(data_error([&] { ImageFolderDataset(dir / "missing", 100); }).find("does not exist"), std::string::npos);
  EXPECT_NE(data_error([&] {
              ImageFolderDataset(dir.path(), 100);
            }).find("neither class folders (root/<class>/<image>) nor images"),
            std::string::npos);
  vit::testing::write_image_folder(dir.path(), {"full"}, 1);
  std::filesystem::create_directories(dir / "empty");
  write_file(dir / "empty" / "notes.txt", "not an image");
  const auto message = data_error([&] { ImageFolderDataset(dir.path(), 100); });
  EXPECT_NE(message.find("empty: class folder contains no images"), std::string::npos) << message;
}

TEST(ImageFile, CorruptZeroByteAndWrongFormatImagesNameTheFile) {
  TempDir dir;
  write_file(dir / "zero.png", "");
  write_file(dir / "text.jpg", "this is not a jpeg at all");
  cv::imwrite((dir / "good.png").string(), vit::testing::pattern_image(40, 40));
  std::ifstream good(dir / "good.png", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(good)), std::istreambuf_iterator<char>());
  write_file(dir / "truncated.png", bytes.substr(0, bytes.size() / 3));
  EXPECT_NE(data_error([&] { read_image(dir / "zero.png", 3, 1000); }).find("zero.png: empty file"), std::string::npos);
  EXPECT_NE(data_error([&] { read_image(dir / "text.jpg", 3, 1000); }).find("text.jpg: not a readable image"),
            std::string::npos);
  EXPECT_NE(data_error([&] { read_image(dir / "truncated.png", 3, 100000); }).find("truncated.png"), std::string::npos);
  EXPECT_NE(data_error([&] { read_image(dir / "nothing.png", 3, 1000); }).find("cannot open"), std::string::npos);
}

TEST(ImageFile, HugeDeclaredSizeIsRefusedBeforeDecoding) {
  TempDir dir;
  cv::imwrite((dir / "small.png").string(), vit::testing::pattern_image(20, 10));
  std::ifstream small(dir / "small.png", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(small)), std::istreambuf_iterator<char>());
  // Rewrite IHDR's width and height to 100000 x 100000 (10 gigapixels).
  for (const int offset : {16, 20}) {
    bytes[offset] = 0;
    bytes[offset + 1] = 0x01;
    bytes[offset + 2] = static_cast<char>(0x86);
    bytes[offset + 3] = static_cast<char>(0xA0);
  }
  write_file(dir / "huge.png", bytes);
  const auto message = data_error([&] { read_image(dir / "huge.png", 3, 100'000'000); });
  EXPECT_NE(message.find("huge.png: header declares 100000x100000 pixels, more than data.max_pixels"),
            std::string::npos)
      << message;
  EXPECT_NE(data_error([&] { read_image(dir / "small.png", 3, 199); }).find("20x10 pixels"), std::string::npos);
  EXPECT_EQ(read_image(dir / "small.png", 3, 200).cols, 20);
}

TEST(ImageFile, JpegFastPathMatchesOpenCvAndRejectsTruncation) {
  TempDir dir;
  const auto image = vit::testing::pattern_image(64, 48, 17);
  ASSERT_TRUE(cv::imwrite((dir / "photo.jpg").string(), image, {cv::IMWRITE_JPEG_QUALITY, 95}));
  const auto rgb = read_image(dir / "photo.jpg", 3, 1'000'000);
  const auto grey = read_image(dir / "photo.jpg", 1, 1'000'000);
  cv::Mat reference = cv::imread((dir / "photo.jpg").string(), cv::IMREAD_COLOR);
  cv::cvtColor(reference, reference, cv::COLOR_BGR2RGB);
  ASSERT_EQ(rgb.size(), reference.size());
  EXPECT_LE(cv::norm(rgb, reference, cv::NORM_INF), 2.0);  // IDCT rounding may differ by a level
  cv::Mat reference_grey = cv::imread((dir / "photo.jpg").string(), cv::IMREAD_GRAYSCALE);
  EXPECT_LE(cv::norm(grey, reference_grey, cv::NORM_INF), 2.0);

  std::ifstream stream(dir / "photo.jpg", std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
  write_file(dir / "cut.jpg", bytes.substr(0, bytes.size() / 2));
  const auto message = data_error([&] { read_image(dir / "cut.jpg", 3, 1'000'000); });
  EXPECT_NE(message.find("cut.jpg: damaged JPEG (Premature end of JPEG file)"), std::string::npos) << message;
  write_file(dir / "header_only.jpg", bytes.substr(0, 20));
  EXPECT_NE(data_error([&] { read_image(dir / "header_only.jpg", 3, 1'000'000); }).find("header_only.jpg"),
            std::string::npos);
}

TEST(ImageFile, HeaderSizesOfEveryFormat) {
  TempDir dir;
  for (const auto* extension : {".png", ".jpg", ".bmp", ".tiff", ".webp"}) {
    const auto file = dir / (std::string("image") + extension);
    ASSERT_TRUE(cv::imwrite(file.string(), vit::testing::pattern_image(37, 23))) << extension;
    std::ifstream stream(file, std::ios::binary);
    const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(stream)), std::istreambuf_iterator<char>());
    const auto size = read_image_size(bytes);
    ASSERT_TRUE(size.has_value()) << extension;
    EXPECT_EQ(size->width, 37) << extension;
    EXPECT_EQ(size->height, 23) << extension;
  }
}

TEST(CsvList, ParsesIndicesNamesHeaderAndQuotes) {
  std::istringstream indices("path,label\n# comment\na.png,1\n\n\"b,c.png\",0\n/abs/d.png, 2\n");
  const auto list = parse_csv_list(indices, "list.csv", "/data", {});
  ASSERT_EQ(list.entries.size(), 3u);
  EXPECT_EQ(list.entries[0].path, "/data/a.png");
  EXPECT_EQ(list.entries[0].label, 1);
  EXPECT_EQ(list.entries[1].path, "/data/b,c.png");
  EXPECT_EQ(list.entries[2].path, "/abs/d.png");
  EXPECT_EQ(list.entries[2].line, 6u);
  EXPECT_EQ(list.class_names, (std::vector<std::string>{"0", "1", "2"}));

  std::istringstream names("x.png,dog\ny.png,cat\nz.png,dog\n");
  const auto named = parse_csv_list(names, "list.csv", "/data", {});
  EXPECT_EQ(named.class_names, (std::vector<std::string>{"cat", "dog"}));
  EXPECT_EQ(named.entries[0].label, 1);
  std::istringstream fixed("x.png,dog\ny.png,cat\n");
  EXPECT_EQ(parse_csv_list(fixed, "list.csv", "/data", {"dog", "cat"}).entries[1].label, 1);
}

TEST(CsvList, ErrorsNameTheLine) {
  const auto error_at = [](const std::string& text, const std::vector<std::string>& classes = {}) {
    std::istringstream lines(text);
    return data_error([&] { parse_csv_list(lines, "list.csv", "/data", classes); });
  };
  EXPECT_NE(error_at("a.png,1\nno comma here\n").find("list.csv:2: expected 'path,label'"), std::string::npos);
  EXPECT_NE(error_at("a.png,1\nb.png,\n").find("list.csv:2:"), std::string::npos);
  EXPECT_NE(error_at("a.png,1\nb.png,1,2\n").find("list.csv:2:"), std::string::npos);
  EXPECT_NE(error_at("\"a.png,1\n").find("list.csv:1:"), std::string::npos);
  EXPECT_NE(error_at("a.png,0\nb.png,5\n", {"x", "y"}).find("list.csv:2: label 5 is out of range for 2 classes"),
            std::string::npos);
  EXPECT_NE(error_at("a.png,0\nb.png,-1\n").find("list.csv:2: label '-1' reads as a number but is not a class index"),
            std::string::npos);
  EXPECT_NE(error_at("a.png,cat\nb.png,cow\n", {"cat", "dog"}).find("list.csv:2: unknown class name 'cow'"),
            std::string::npos);
  EXPECT_NE(error_at("# nothing\n").find("no entries"), std::string::npos);
}

TEST(CsvList, MissingFilesAreReportedWithTheirLine) {
  TempDir dir;
  cv::imwrite((dir / "a.png").string(), vit::testing::pattern_image(8, 8));
  write_file(dir / "list.csv", "a.png,0\nmissing.png,1\n");
  const auto message = data_error([&] { CsvListDataset(dir / "list.csv", {}, 1000); });
  EXPECT_NE(message.find("list.csv:2: "), std::string::npos) << message;
  EXPECT_NE(message.find("missing.png does not exist"), std::string::npos) << message;
}

std::string idx_header(uint8_t dims, const std::vector<uint32_t>& sizes) {
  std::string bytes = {0, 0, 8, static_cast<char>(dims)};
  for (const auto size : sizes) {
    for (const int shift : {24, 16, 8, 0}) bytes.push_back(static_cast<char>((size >> shift) & 0xff));
  }
  return bytes;
}

TEST(IdxDataset, CountMismatchAndWrongShapesAreErrors) {
  TempDir dir;
  write_file(dir / "train-images-idx3-ubyte", idx_header(3, {3, 2, 2}) + std::string(12, '\x05'));
  write_file(dir / "train-labels-idx1-ubyte", idx_header(1, {2}) + std::string("\x01\x02", 2));
  const auto message = data_error([&] { load_idx_dataset(dir.path(), "train", {}); });
  EXPECT_NE(message.find("holds 3 images but"), std::string::npos) << message;
  EXPECT_NE(message.find("holds 2 labels"), std::string::npos) << message;
  write_file(dir / "train-labels-idx1-ubyte", idx_header(1, {3}) + std::string("\x01\x02\x07", 3));
  EXPECT_NE(data_error([&] {
              load_idx_dataset(dir.path(), "train", {"a", "b", "c"});
            }).find("label 7 is out of range for 3 classes"),
            std::string::npos);
  const auto ok = load_idx_dataset(dir.path(), "train", {});
  EXPECT_EQ(ok.size(), 3u);
  EXPECT_EQ(ok.class_names().size(), 8u);
  EXPECT_EQ(ok.load(1, 1).at<uint8_t>(1, 1), 5);
  EXPECT_NE(data_error([&] { load_idx_dataset(dir.path(), "test", {}); }).find("t10k-images-idx3-ubyte"),
            std::string::npos);
}

TEST(CifarDataset, ReadsCifar10AndCifar100Records) {
  TempDir dir;
  std::string record10(1 + 3072, '\0');
  record10[0] = 7;
  record10[1 + 0] = 10;         // R of pixel (0, 0)
  record10[1 + 1024 + 0] = 20;  // G
  record10[1 + 2048 + 0] = 30;  // B
  write_file(dir / "test_batch.bin", record10 + record10);
  const auto cifar10 = load_cifar_dataset(dir.path(), "test", {});
  ASSERT_EQ(cifar10.size(), 2u);
  EXPECT_EQ(cifar10.label(1), 7);
  EXPECT_EQ(cifar10.load(0, 3).at<cv::Vec3b>(0, 0), cv::Vec3b(10, 20, 30));
  EXPECT_NE(data_error([&] { load_cifar_dataset(dir.path(), "train", {}); }).find("data_batch_1.bin"),
            std::string::npos);
  write_file(dir / "test_batch.bin", record10 + "x");
  EXPECT_NE(data_error([&] { load_cifar_dataset(dir.path(), "test", {}); }).find("not a whole number"),
            std::string::npos);

  TempDir dir100;
  std::string record100(2 + 3072, '\0');
  record100[0] = 3;
  record100[1] = 42;
  write_file(dir100 / "train.bin", record100);
  const auto cifar100 = load_cifar_dataset(dir100.path(), "train", {});
  EXPECT_EQ(cifar100.label(0), 42);
  EXPECT_EQ(cifar100.class_names().size(), 100u);
}

TEST(SplitDataset, DisjointCoveringAndDeterministic) {
  auto base = std::make_shared<TensorDataset>(vit::testing::counting_dataset(100, 10));
  const auto [train, val] = split_dataset(base, 0.2, 5);
  ASSERT_EQ(val->size(), 20u);
  ASSERT_EQ(train->size(), 80u);
  std::set<std::string> seen;
  for (size_t i = 0; i < train->size(); ++i) seen.insert(train->describe(i));
  for (size_t i = 0; i < val->size(); ++i) seen.insert(val->describe(i));
  EXPECT_EQ(seen.size(), 100u);
  const auto again = split_dataset(base, 0.2, 5);
  const auto other_seed = split_dataset(base, 0.2, 6);
  bool differs = false;
  for (size_t i = 0; i < val->size(); ++i) {
    EXPECT_EQ(val->describe(i), again.second->describe(i));
    differs = differs || val->describe(i) != other_seed.second->describe(i);
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace vit::data
