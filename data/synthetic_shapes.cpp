#include "data/synthetic_shapes.h"

#include "data/errors.h"
#include "data/object_boxes.h"
#include "data/random.h"

#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>

namespace vit::data {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kShapesStream = 0x5348415045ull;  // "SHAPE"
constexpr int kPlacementAttempts = 50;
constexpr double kMaxOverlap = 0.2;

enum Shape { kCircle, kSquare, kTriangle, kCross };

cv::Vec3b random_colour(Random& random) {
  return {static_cast<uint8_t>(random.integer(0, 256)), static_cast<uint8_t>(random.integer(0, 256)),
          static_cast<uint8_t>(random.integer(0, 256))};
}

// A colour that stands out from `background` by at least a third of the range in some channel.
cv::Scalar contrasting_colour(const cv::Vec3b& background, Random& random) {
  while (true) {
    const auto colour = random_colour(random);
    int difference = 0;
    for (int c = 0; c < 3; ++c) difference = std::max(difference, std::abs(colour[c] - background[c]));
    if (difference > 85)
      return {static_cast<double>(colour[0]), static_cast<double>(colour[1]), static_cast<double>(colour[2])};
  }
}

cv::Mat background(int size, Random& random, cv::Vec3b& mean_colour) {
  const auto from = random_colour(random);
  const auto to = random_colour(random);
  const double angle = random.uniform(0.0, M_PI);
  const double period = random.uniform(4.0, 16.0);
  const double stripes = random.uniform(0.0, 30.0);
  cv::Mat image(size, size, CV_8UC3);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double t = (x + y) / (2.0 * size);
      const double wave = stripes * std::sin(2.0 * M_PI * (x * std::cos(angle) + y * std::sin(angle)) / period);
      auto& pixel = image.at<cv::Vec3b>(y, x);
      for (int c = 0; c < 3; ++c) {
        const double value = (1.0 - t) * from[c] + t * to[c] + wave + random.uniform(-12.0, 12.0);
        pixel[c] = cv::saturate_cast<uint8_t>(value);
      }
    }
  }
  for (int c = 0; c < 3; ++c) mean_colour[c] = static_cast<uint8_t>((from[c] + to[c]) / 2);
  return image;
}

void draw(cv::Mat& image, Shape shape, const ObjectBox& box, const cv::Scalar& colour) {
  const int x0 = static_cast<int>(box.x0), y0 = static_cast<int>(box.y0);
  const int side = static_cast<int>(box.x1 - box.x0);
  switch (shape) {
    case kCircle:
      cv::circle(image, {x0 + side / 2, y0 + side / 2}, side / 2, colour, cv::FILLED, cv::LINE_AA);
      break;
    case kSquare:
      cv::rectangle(image, cv::Rect(x0, y0, side, side), colour, cv::FILLED);
      break;
    case kTriangle: {
      const std::vector<cv::Point> corners = {{x0, y0 + side - 1}, {x0 + side - 1, y0 + side - 1}, {x0 + side / 2, y0}};
      cv::fillPoly(image, std::vector<std::vector<cv::Point>>{corners}, colour, cv::LINE_AA);
      break;
    }
    case kCross: {
      const int bar = std::max(2, side / 3);
      cv::rectangle(image, cv::Rect(x0, y0 + (side - bar) / 2, side, bar), colour, cv::FILLED);
      cv::rectangle(image, cv::Rect(x0 + (side - bar) / 2, y0, bar, side), colour, cv::FILLED);
      break;
    }
  }
}

double overlap(const ObjectBox& a, const ObjectBox& b) {
  const double w = std::min(a.x1, b.x1) - std::max(a.x0, b.x0);
  const double h = std::min(a.y1, b.y1) - std::max(a.y0, b.y0);
  if (w <= 0 || h <= 0) return 0.0;
  const double inter = w * h;
  return inter / ((a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter);
}

void write_split(const fs::path& dir, const std::string& split, int64_t count, uint64_t split_stream,
                 const SyntheticShapesOptions& options) {
  const auto folder = dir / split;
  std::error_code error;
  fs::create_directories(folder, error);
  if (error) throw DataError(folder.string() + ": cannot create: " + error.message());
  const int size = static_cast<int>(options.image_size);
  nlohmann::json images = nlohmann::json::array(), annotations = nlohmann::json::array();
  int64_t annotation_id = 1;
  for (int64_t i = 0; i < count; ++i) {
    Random random(options.seed, kShapesStream, split_stream, static_cast<uint64_t>(i));
    cv::Vec3b mean_colour;
    auto image = background(size, random, mean_colour);
    const int64_t wanted = random.integer(1, options.max_objects + 1);
    ObjectBoxes placed;
    for (int64_t attempt = 0; attempt < kPlacementAttempts && static_cast<int64_t>(placed.size()) < wanted; ++attempt) {
      const int side = static_cast<int>(random.integer(options.min_object_size, options.max_object_size + 1));
      const int x = static_cast<int>(random.integer(0, size - side + 1));
      const int y = static_cast<int>(random.integer(0, size - side + 1));
      const auto shape = static_cast<Shape>(random.integer(0, static_cast<int64_t>(synthetic_shape_names().size())));
      const ObjectBox box{static_cast<double>(x), static_cast<double>(y), static_cast<double>(x + side),
                          static_cast<double>(y + side), static_cast<int64_t>(shape)};
      if (std::any_of(placed.begin(), placed.end(),
                      [&](const ObjectBox& other) { return overlap(box, other) > kMaxOverlap; })) {
        continue;
      }
      draw(image, shape, box, contrasting_colour(mean_colour, random));
      placed.push_back(box);
    }
    char name_text[32];
    std::snprintf(name_text, sizeof(name_text), "%06lld.png", static_cast<long long>(i + 1));
    const std::string name = name_text;
    cv::Mat bgr;
    cv::cvtColor(image, bgr, cv::COLOR_RGB2BGR);
    if (!cv::imwrite((folder / name).string(), bgr)) throw DataError((folder / name).string() + ": cannot write");
    images.push_back({{"id", i + 1}, {"file_name", name}, {"width", size}, {"height", size}});
    for (const auto& box : placed) {
      annotations.push_back({{"id", annotation_id++},
                             {"image_id", i + 1},
                             {"category_id", box.category + 1},
                             {"bbox", {box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0}},
                             {"area", (box.x1 - box.x0) * (box.y1 - box.y0)},
                             {"iscrowd", 0}});
    }
  }
  nlohmann::json categories = nlohmann::json::array();
  for (size_t c = 0; c < synthetic_shape_names().size(); ++c) {
    categories.push_back({{"id", c + 1}, {"name", synthetic_shape_names()[c]}});
  }
  const nlohmann::json root = {{"images", images}, {"annotations", annotations}, {"categories", categories}};
  const auto file = dir / (split + ".json");
  std::ofstream out(file);
  out << root.dump();
  if (!out) throw DataError(file.string() + ": cannot write");
}

}  // namespace

const std::vector<std::string>& synthetic_shape_names() {
  static const std::vector<std::string> names = {"circle", "square", "triangle", "cross"};
  return names;
}

void write_synthetic_shapes(const fs::path& dir, const SyntheticShapesOptions& options) {
  write_split(dir, "train", options.train_images, 0, options);
  write_split(dir, "val", options.val_images, 1, options);
}

}  // namespace vit::data
