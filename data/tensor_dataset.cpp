#include "data/tensor_dataset.h"

#include "data/errors.h"
#include "data/idx_file.h"
#include "data/regular_file.h"

#include <opencv2/imgproc.hpp>

#include <fstream>

namespace vit::data {
namespace {

std::filesystem::path find_file(const std::filesystem::path& dir, const std::string& stem) {
  for (const auto& candidate : {dir / (stem + ".gz"), dir / stem}) {
    if (std::filesystem::exists(candidate)) return candidate;
  }
  throw DataError(dir.string() + ": neither " + stem + ".gz nor " + stem + " exists");
}

std::vector<std::string> numbered_names(int64_t count) {
  std::vector<std::string> names;
  for (int64_t i = 0; i < count; ++i) names.push_back(std::to_string(i));
  return names;
}

void check_labels(const torch::Tensor& labels, size_t num_classes, const std::string& source) {
  if (labels.numel() == 0) return;
  const auto max_label = labels.max().item<int64_t>();
  if (max_label >= static_cast<int64_t>(num_classes)) {
    throw DataError(source + ": label " + std::to_string(max_label) + " is out of range for " +
                    std::to_string(num_classes) + " classes");
  }
}

std::vector<uint8_t> read_binary(const std::filesystem::path& file) {
  return RegularFile(file, "CIFAR batch").read_all(uint64_t{1} << 30);
}

}  // namespace

TensorDataset::TensorDataset(torch::Tensor images, torch::Tensor labels, std::vector<std::string> class_names,
                             std::string name)
    : images_(images.contiguous()),
      labels_(labels.to(torch::kInt64).contiguous()),
      labels_ptr_(labels_.data_ptr<int64_t>()),
      class_names_(std::move(class_names)),
      name_(std::move(name)) {}

cv::Mat TensorDataset::load(size_t index, int channels) const {
  const auto image = images_[static_cast<int64_t>(index)];
  const int rows = static_cast<int>(image.size(0));
  const int cols = static_cast<int>(image.size(1));
  const int have = image.dim() == 3 ? static_cast<int>(image.size(2)) : 1;
  // A header over the tensor's memory: no copy unless the channel count changes.
  const cv::Mat view(rows, cols, CV_8UC(have), image.data_ptr<uint8_t>());
  if (have == channels) return view;
  cv::Mat converted;
  cv::cvtColor(view, converted, have == 1 ? cv::COLOR_GRAY2RGB : cv::COLOR_RGB2GRAY);
  return converted;
}

TensorDataset load_idx_dataset(const std::filesystem::path& dir, const std::string& split,
                               std::vector<std::string> class_names) {
  if (split != "train" && split != "test") throw DataError("IDX split must be 'train' or 'test', got '" + split + "'");
  const std::string prefix = split == "train" ? "train" : "t10k";
  const auto images_file = find_file(dir, prefix + "-images-idx3-ubyte");
  const auto labels_file = find_file(dir, prefix + "-labels-idx1-ubyte");
  const auto images = read_idx_file(images_file);
  const auto labels = read_idx_file(labels_file);
  if (images.dim() != 3) throw DataError(images_file.string() + ": expected 3 dimensions [N, rows, cols]");
  if (labels.dim() != 1) throw DataError(labels_file.string() + ": expected 1 dimension [N]");
  if (images.size(0) != labels.size(0)) {
    throw DataError(images_file.string() + " holds " + std::to_string(images.size(0)) + " images but " +
                    labels_file.string() + " holds " + std::to_string(labels.size(0)) + " labels");
  }
  if (class_names.empty()) class_names = numbered_names(labels.numel() ? labels.max().item<int64_t>() + 1 : 0);
  check_labels(labels, class_names.size(), labels_file.string());
  return TensorDataset(images, labels, std::move(class_names), images_file.string());
}

TensorDataset load_cifar_dataset(const std::filesystem::path& dir, const std::string& split,
                                 std::vector<std::string> class_names) {
  if (split != "train" && split != "test")
    throw DataError("CIFAR split must be 'train' or 'test', got '" + split + "'");
  const bool cifar100 = std::filesystem::exists(dir / "train.bin") || std::filesystem::exists(dir / "test.bin");
  std::vector<std::filesystem::path> files;
  if (cifar100) {
    files.push_back(dir / (split + ".bin"));
  } else if (split == "train") {
    for (int i = 1; i <= 5; ++i) files.push_back(dir / ("data_batch_" + std::to_string(i) + ".bin"));
  } else {
    files.push_back(dir / "test_batch.bin");
  }
  constexpr int64_t kSide = 32;
  constexpr int64_t kPixels = kSide * kSide;
  const int64_t label_bytes = cifar100 ? 2 : 1;
  const int64_t record = label_bytes + 3 * kPixels;

  std::vector<torch::Tensor> images;
  std::vector<torch::Tensor> labels;
  for (const auto& file : files) {
    auto bytes = read_binary(file);
    const auto size = static_cast<int64_t>(bytes.size());
    if (size == 0 || size % record != 0) {
      throw DataError(file.string() + ": size " + std::to_string(size) + " is not a whole number of " +
                      std::to_string(record) + "-byte CIFAR" + (cifar100 ? "-100" : "-10") + " records");
    }
    const auto records = torch::from_blob(bytes.data(), {size / record, record}, torch::kUInt8);
    labels.push_back(records.select(1, label_bytes - 1).to(torch::kInt64));
    // Channel planes [N, 3, 32, 32] -> interleaved RGB [N, 32, 32, 3].
    images.push_back(records.slice(1, label_bytes).view({-1, 3, kSide, kSide}).permute({0, 2, 3, 1}).contiguous());
  }
  auto all_labels = torch::cat(labels);
  if (class_names.empty()) class_names = numbered_names(cifar100 ? 100 : 10);
  check_labels(all_labels, class_names.size(), dir.string());
  return TensorDataset(torch::cat(images), all_labels, std::move(class_names), dir.string());
}

}  // namespace vit::data
