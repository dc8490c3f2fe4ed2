#pragma once

#include "data/dataset.h"

#include <opencv2/core/mat.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace vit::data {

struct JpegDecode {
  std::optional<ImageSize> size;  // from TurboJPEG's header parser; empty when it cannot read one
  std::string header_error;       // TurboJPEG's reason when it cannot
  std::optional<cv::Mat> image;   // empty when TurboJPEG declines the file (e.g. CMYK)
};

// Decodes a JPEG with libjpeg-turbo's TurboJPEG API straight into 8-bit RGB (channels 3) or grey
// (channels 1): about twice as fast as cv::imdecode followed by a BGR->RGB conversion. Throws
// DataError naming `source` when the header declares more than `max_pixels` pixels (before any
// allocation) and when libjpeg reports damage (a truncated file, corrupt data: libjpeg would fill
// the rest with grey and only warn). A file TurboJPEG cannot handle comes back without an image,
// with its size when the header was readable, for the caller's OpenCV fallback.
JpegDecode decode_jpeg(const std::vector<uint8_t>& bytes, int channels, int64_t max_pixels, const std::string& source);

}  // namespace vit::data
