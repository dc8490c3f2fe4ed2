#include "data/dataset.h"

#include "data/errors.h"

#include <opencv2/imgproc.hpp>

namespace vit::data {

cv::Mat to_channels(const cv::Mat& decoded, int channels) {
  const int have = decoded.channels();
  if (have == channels && channels == 1) return decoded;
  cv::Mat converted;
  if (channels == 1) {
    cv::cvtColor(decoded, converted, have == 4 ? cv::COLOR_BGRA2GRAY : cv::COLOR_BGR2GRAY);
  } else if (channels == 3) {
    const int code = have == 1 ? cv::COLOR_GRAY2RGB : (have == 4 ? cv::COLOR_BGRA2RGB : cv::COLOR_BGR2RGB);
    cv::cvtColor(decoded, converted, code);
  } else {
    throw DataError("images can be converted to 1 or 3 channels, not " + std::to_string(channels));
  }
  return converted;
}

}  // namespace vit::data
