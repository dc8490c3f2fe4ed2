#include "data/coco_dataset.h"

#include "data/errors.h"
#include "data/image_file.h"
#include "data/json_integer.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <map>
#include <sstream>
#include <type_traits>

namespace vit::data {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Allowed overhang of a box past its image: COCO's own files round some boxes outward.
constexpr double kBoxTolerance = 1.0;

json parse_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw DataError(file.string() + ": cannot open the annotation file");
  std::stringstream text;
  text << in.rdbuf();
  const auto content = text.str();
  try {
    return json::parse(content);
  } catch (const json::parse_error& error) {
    const auto offset = std::min(error.byte, content.size());
    const auto line = 1 + std::count(content.begin(), content.begin() + static_cast<std::ptrdiff_t>(offset), '\n');
    throw DataError(file.string() + ":" + std::to_string(line) + ": not valid JSON (" + error.what() + ")");
  }
}

// A member of a JSON object with the type asked for, or a DataError naming where it was looked for.
template <typename T>
T member(const json& object, const char* key, const std::string& where) {
  const auto found = object.find(key);
  if (found == object.end()) throw DataError(where + " has no \"" + key + "\"");
  if constexpr (std::is_same_v<T, int64_t>) {
    if (const auto number = json_integer(*found)) return *number;
    throw DataError(where + ": \"" + key + "\" is not a whole number (" + found->dump() + ")");
  } else {
    try {
      return found->get<T>();
    } catch (const json::exception&) {
      throw DataError(where + ": \"" + key + "\" has the wrong type (" + found->dump() + ")");
    }
  }
}

// COCO writes iscrowd as 0 or 1; some tools write a boolean.
bool is_crowd(const json& annotation, const std::string& where) {
  const auto found = annotation.find("iscrowd");
  if (found == annotation.end()) return false;
  if (found->is_boolean()) return found->get<bool>();
  return member<int64_t>(annotation, "iscrowd", where) != 0;
}

const json& array_of(const json& root, const char* key, const fs::path& file) {
  const auto found = root.find(key);
  if (found == root.end() || !found->is_array()) {
    throw DataError(file.string() + ": no \"" + key +
                    "\" array (a COCO annotation file has images, annotations and categories)");
  }
  return *found;
}

}  // namespace

CocoDataset::CocoDataset(const fs::path& images, const fs::path& annotations, int64_t max_pixels, bool skip_bad)
    : annotations_(annotations), max_pixels_(max_pixels) {
  std::error_code error;
  if (!fs::is_directory(images, error)) throw DataError(images.string() + ": the COCO image folder does not exist");
  try {
    read(images, parse_file(annotations), skip_bad);
  } catch (const nlohmann::json::exception& e) {
    // Entries of a kind the reader does not check for itself.
    throw DataError(annotations.string() + ": not a COCO annotation file (" + e.what() + ")");
  }
}

void CocoDataset::read(const fs::path& images, const nlohmann::json& root, bool skip_bad) {
  const auto& annotations = annotations_;
  std::error_code error;
  if (!root.is_object()) throw DataError(annotations.string() + ": not a COCO annotation file (a JSON object)");
  const auto file = annotations.string();
  const auto bad = [&](const std::string& message) {
    if (!skip_bad) throw DataError(message);
    ++skipped_;
    spdlog::warn("skipping: {}", message);
  };

  std::map<int64_t, size_t> class_of_category;
  std::vector<std::pair<int64_t, std::string>> categories;
  for (const auto& category : array_of(root, "categories", annotations)) {
    const auto where = file + ": category " + category.dump();
    categories.emplace_back(member<int64_t>(category, "id", where), member<std::string>(category, "name", where));
  }
  std::sort(categories.begin(), categories.end());
  for (const auto& [id, name] : categories) {
    if (!class_of_category.emplace(id, class_names_.size()).second) {
      throw DataError(file + ": category id " + std::to_string(id) + " is listed twice");
    }
    category_ids_.push_back(id);
    class_names_.push_back(name);
  }
  if (class_names_.empty()) throw DataError(file + ": \"categories\" is empty");

  std::map<int64_t, size_t> sample_of_image;
  std::vector<Image> listed;
  for (const auto& image : array_of(root, "images", annotations)) {
    const auto where = file + ": image " + (image.contains("id") ? image["id"].dump() : image.dump());
    Image entry{member<int64_t>(image, "id", where),
                images / member<std::string>(image, "file_name", where),
                {member<int64_t>(image, "width", where), member<int64_t>(image, "height", where)},
                {}};
    listed.push_back(std::move(entry));
  }
  std::sort(listed.begin(), listed.end(), [](const Image& a, const Image& b) { return a.id < b.id; });
  for (auto& image : listed) {
    const auto where = file + ": image id " + std::to_string(image.id);
    if (sample_of_image.count(image.id) != 0) throw DataError(where + " is listed twice");
    if (!fs::exists(image.file, error)) {
      bad(where + ": " + image.file.string() + " does not exist");
      continue;
    }
    if (image.size.width <= 0 || image.size.height <= 0) {
      bad(where + ": width and height must be positive");
      continue;
    }
    sample_of_image.emplace(image.id, images_.size());
    images_.push_back(std::move(image));
  }
  if (images_.empty()) throw DataError(file + ": no usable images");

  for (const auto& annotation : array_of(root, "annotations", annotations)) {
    const auto where =
        file + ": annotation " + (annotation.contains("id") ? "id " + annotation["id"].dump() : annotation.dump());
    if (is_crowd(annotation, where)) continue;
    const auto image_id = member<int64_t>(annotation, "image_id", where);
    const auto category_id = member<int64_t>(annotation, "category_id", where);
    const auto bbox = member<std::vector<double>>(annotation, "bbox", where);
    const auto image = sample_of_image.find(image_id);
    const auto category = class_of_category.find(category_id);
    if (image == sample_of_image.end()) {
      // An image left out as bad takes its annotations with it.
      if (!skip_bad) throw DataError(where + ": image_id " + std::to_string(image_id) + " is not in \"images\"");
      continue;
    }
    if (category == class_of_category.end()) {
      bad(where + ": category_id " + std::to_string(category_id) + " is not in \"categories\"");
      continue;
    }
    if (bbox.size() != 4) {
      bad(where + ": bbox must be [x, y, width, height]");
      continue;
    }
    auto& target = images_[image->second];
    const double width = static_cast<double>(target.size.width);
    const double height = static_cast<double>(target.size.height);
    const double x0 = bbox[0], y0 = bbox[1], x1 = bbox[0] + bbox[2], y1 = bbox[1] + bbox[3];
    if (!(bbox[2] > 0.0 && bbox[3] > 0.0)) {
      bad(where + ": bbox [x, y, w, h] has no area");
      continue;
    }
    if (x0 < -kBoxTolerance || y0 < -kBoxTolerance || x1 > width + kBoxTolerance || y1 > height + kBoxTolerance) {
      std::ostringstream text;
      text << where << ": bbox [" << bbox[0] << ", " << bbox[1] << ", " << bbox[2] << ", " << bbox[3]
           << "] lies outside its " << target.size.width << "x" << target.size.height << " image";
      bad(text.str());
      continue;
    }
    const ObjectBox box{std::clamp(x0, 0.0, width), std::clamp(y0, 0.0, height), std::clamp(x1, 0.0, width),
                        std::clamp(y1, 0.0, height), static_cast<int64_t>(category->second)};
    if (!(box.x0 < box.x1 && box.y0 < box.y1)) {
      bad(where + ": bbox [x, y, w, h] has no area inside its image");
      continue;
    }
    target.objects.push_back(box);
  }
}

cv::Mat CocoDataset::load(size_t index, int channels) const {
  const auto& image = images_[index];
  auto pixels = read_image(image.file, channels, max_pixels_);
  if (pixels.cols != image.size.width || pixels.rows != image.size.height) {
    throw DataError(describe(index) + ": the image is " + std::to_string(pixels.cols) + "x" +
                    std::to_string(pixels.rows) + ", its annotation says " + std::to_string(image.size.width) + "x" +
                    std::to_string(image.size.height));
  }
  return pixels;
}

std::string CocoDataset::describe(size_t index) const {
  return images_[index].file.string() + " (image id " + std::to_string(images_[index].id) + " of " +
         annotations_.string() + ")";
}

}  // namespace vit::data
