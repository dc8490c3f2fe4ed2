#include "data/jpeg_decoder.h"

#include "data/errors.h"

#include <turbojpeg.h>

#include <memory>

namespace vit::data {
namespace {

struct HandleCloser {
  void operator()(void* handle) const { tjDestroy(handle); }
};

// One decompressor per loader thread; TurboJPEG handles are not thread-safe.
tjhandle thread_decompressor() {
  thread_local std::unique_ptr<void, HandleCloser> handle(tjInitDecompress());
  return handle.get();
}

}  // namespace

JpegDecode decode_jpeg(const std::vector<uint8_t>& bytes, int channels, int64_t max_pixels, const std::string& source) {
  JpegDecode result;
  tjhandle handle = thread_decompressor();
  if (handle == nullptr) return result;
  int width = 0;
  int height = 0;
  int subsampling = 0;
  int colorspace = 0;
  if (tjDecompressHeader3(handle, bytes.data(), static_cast<unsigned long>(bytes.size()), &width, &height, &subsampling,
                          &colorspace) != 0) {
    result.header_error = tjGetErrorStr2(handle);
    return result;
  }
  result.size = ImageSize{width, height};
  if (width <= 0 || height <= 0) throw DataError(source + ": JPEG header declares an empty image");
  if (int64_t{width} * int64_t{height} > max_pixels) {
    throw DataError(source + ": JPEG header declares " + std::to_string(width) + "x" + std::to_string(height) +
                    " pixels, more than data.max_pixels = " + std::to_string(max_pixels));
  }
  if (colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) return result;
  cv::Mat image(height, width, channels == 1 ? CV_8UC1 : CV_8UC3);
  const int status = tjDecompress2(handle, bytes.data(), static_cast<unsigned long>(bytes.size()), image.data, width,
                                   static_cast<int>(image.step), height, channels == 1 ? TJPF_GRAY : TJPF_RGB, 0);
  if (status != 0) {
    // A warning means libjpeg met damage and went on (grey rows, skipped garbage): a bad sample here.
    if (tjGetErrorCode(handle) == TJERR_WARNING) {
      throw DataError(source + ": damaged JPEG (" + std::string(tjGetErrorStr2(handle)) + ")");
    }
    return result;  // fatal: OpenCV's decoder gets a try
  }
  result.image = image;
  return result;
}

}  // namespace vit::data
