#pragma once

#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vit::data {

// Decodes a JPEG with libjpeg-turbo's TurboJPEG API straight into 8-bit RGB (channels 3) or grey
// (channels 1): about twice as fast as cv::imdecode followed by a BGR->RGB conversion. Returns
// nullopt when TurboJPEG cannot handle the file (e.g. CMYK), so the caller can fall back to
// OpenCV; throws DataError naming `source` for a truncated file.
std::optional<cv::Mat> decode_jpeg(const std::vector<uint8_t>& bytes, int channels, const std::string& source);

}  // namespace vit::data
