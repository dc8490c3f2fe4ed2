#pragma once

#include "data/object_boxes.h"

#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vit::data {

struct ImageSize {
  int64_t width;
  int64_t height;
};

// An image source, labelled or not. Implementations must allow concurrent load() calls from the
// loader's worker threads.
class Dataset {
 public:
  virtual ~Dataset() = default;

  virtual size_t size() const = 0;
  virtual int64_t label(size_t index) const = 0;
  // The image as 8-bit HxW (grey) or HxWx3 (RGB order) with `channels` channels.
  // Throws DataError naming the file for an unreadable or corrupt image.
  virtual cv::Mat load(size_t index, int channels) const = 0;
  // Where sample `index` comes from, for error messages ("dir/cat/1.jpg", "train.idx[17]").
  virtual std::string describe(size_t index) const = 0;
  // The stored image's size, from the file header where there is one; nullopt if unknown.
  virtual std::optional<ImageSize> stored_size(size_t index) const = 0;
  // Empty for images without labels (a flat image folder, a list of paths), whose label() is
  // kNoLabel: only pretraining (masked image modelling) learns from them.
  virtual const std::vector<std::string>& class_names() const = 0;
  bool labelled() const { return !class_names().empty(); }
  // The data's own id of each class where it has one (COCO's category ids, which may have gaps);
  // empty where classes are only numbered.
  virtual const std::vector<int64_t>& category_ids() const {
    static const std::vector<int64_t> numbered;
    return numbered;
  }
  // Detection data (COCO): the objects of image `index`, in the stored image's pixels, their
  // categories indexing class_names(); label() is kNoLabel then.
  virtual bool has_objects() const { return false; }
  virtual ObjectBoxes objects(size_t /*index*/) const { return {}; }
};

inline constexpr int64_t kNoLabel = -1;

// Converts an 8-bit image as OpenCV decodes it (grey, BGR or BGRA) into `channels` channels
// in RGB order.
cv::Mat to_channels(const cv::Mat& decoded, int channels);

}  // namespace vit::data
