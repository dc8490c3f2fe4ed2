#pragma once

#include "data/dataset.h"

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <string>
#include <vector>

namespace vit::data {

// A COCO-format detection dataset: an annotation file (JSON with "images" {id, file_name, width,
// height}, "annotations" {id, image_id, category_id, bbox [x, y, w, h] in pixels, iscrowd} and
// "categories" {id, name}) over a folder of images. Categories, sorted by id, are the classes
// 0, 1, ...; images, sorted by id, the samples (those without objects too). Crowd annotations
// (iscrowd 1) are dropped: vitcpp neither trains on nor evaluates crowd regions. Boxes may reach
// at most one pixel past the image (rounding in the files) and are clipped to it.
class CocoDataset : public Dataset {
 public:
  // Throws DataError naming the file and the JSON path or annotation id of the first problem: bad
  // JSON, missing keys, an image file that does not exist, a box outside its image or without
  // area, an unknown category or image id. With `skip_bad`, bad annotations and images whose file
  // is missing are left out instead (counted in skipped(), each logged).
  CocoDataset(const std::filesystem::path& images, const std::filesystem::path& annotations, int64_t max_pixels,
              bool skip_bad);

  size_t size() const override { return images_.size(); }
  int64_t label(size_t /*index*/) const override { return kNoLabel; }
  cv::Mat load(size_t index, int channels) const override;
  std::string describe(size_t index) const override;
  std::optional<ImageSize> stored_size(size_t index) const override { return images_[index].size; }
  const std::vector<std::string>& class_names() const override { return class_names_; }
  bool has_objects() const override { return true; }
  ObjectBoxes objects(size_t index) const override { return images_[index].objects; }

  const std::vector<int64_t>& category_ids() const override { return category_ids_; }
  // The COCO image id of each sample.
  int64_t image_id(size_t index) const { return images_[index].id; }
  int64_t skipped() const { return skipped_; }

 private:
  void read(const std::filesystem::path& images, const nlohmann::json& root, bool skip_bad);

  struct Image {
    int64_t id;
    std::filesystem::path file;
    ImageSize size;
    ObjectBoxes objects;
  };
  std::filesystem::path annotations_;
  std::vector<Image> images_;
  std::vector<std::string> class_names_;
  std::vector<int64_t> category_ids_;
  int64_t max_pixels_;
  int64_t skipped_ = 0;
};

}  // namespace vit::data
