#include "support/data_test_support.h"

#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>

namespace vit::testing {

cv::Mat pattern_image(int width, int height, int seed) {
  cv::Mat image(height, width, CV_8UC3);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      image.at<cv::Vec3b>(y, x) =
          cv::Vec3b(static_cast<uint8_t>((x * 7 + seed) % 256), static_cast<uint8_t>((y * 11 + seed) % 256), 100);
    }
  }
  return image;
}

void write_image_folder(const std::filesystem::path& root, const std::vector<std::string>& classes, int per_class,
                        const std::string& extension, int size) {
  for (const auto& name : classes) {
    std::filesystem::create_directories(root / name);
    for (int i = 0; i < per_class; ++i) {
      cv::imwrite((root / name / (std::to_string(i) + extension)).string(), pattern_image(size, size, i));
    }
  }
}

data::TensorDataset counting_dataset(int64_t count, int64_t classes) {
  auto images = torch::arange(count).remainder(256).to(torch::kUInt8).view({count, 1, 1}).expand({count, 8, 8});
  auto labels = torch::arange(count).remainder(classes);
  std::vector<std::string> names;
  for (int64_t i = 0; i < classes; ++i) names.push_back("class" + std::to_string(i));
  return data::TensorDataset(images.contiguous(), labels, names, "counting");
}

}  // namespace vit::testing
