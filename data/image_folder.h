#pragma once

#include "data/dataset.h"

#include <filesystem>

namespace vit::data {

// root/<class>/<image>.{jpg,jpeg,png,bmp,tif,tiff,webp}: classes sorted by folder name get
// indices 0, 1, ... (torchvision's ImageFolder convention), or, when `class_names` is given
// (data.class_names), those folders in that order; files sorted by path within a class. A root
// without class folders but with images in it is a folder of unlabeled images (for pretraining).
class ImageFolderDataset : public Dataset {
 public:
  // Throws DataError for a missing root, neither class folders nor images, a class folder without
  // images, or `class_names` that do not name the root's class folders exactly.
  ImageFolderDataset(const std::filesystem::path& root, int64_t max_pixels,
                     const std::vector<std::string>& class_names = {});

  size_t size() const override { return samples_.size(); }
  int64_t label(size_t index) const override { return samples_[index].label; }
  cv::Mat load(size_t index, int channels) const override;
  std::string describe(size_t index) const override { return samples_[index].path.string(); }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  std::optional<ImageSize> stored_size(size_t index) const override;

 private:
  struct Sample {
    std::filesystem::path path;
    int64_t label;
  };
  std::vector<Sample> samples_;
  std::vector<std::string> class_names_;
  int64_t max_pixels_;
};

// Whether the file name has one of the image extensions ImageFolder and the CSV list accept.
bool has_image_extension(const std::filesystem::path& file);

}  // namespace vit::data
