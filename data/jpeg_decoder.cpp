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

std::optional<cv::Mat> decode_jpeg(const std::vector<uint8_t>& bytes, int channels, const std::string& source) {
  tjhandle handle = thread_decompressor();
  if (handle == nullptr) return std::nullopt;
  int width = 0;
  int height = 0;
  int subsampling = 0;
  int colorspace = 0;
  if (tjDecompressHeader3(handle, bytes.data(), static_cast<unsigned long>(bytes.size()), &width, &height, &subsampling,
                          &colorspace) != 0 ||
      colorspace == TJCS_CMYK || colorspace == TJCS_YCCK) {
    return std::nullopt;
  }
  cv::Mat image(height, width, channels == 1 ? CV_8UC1 : CV_8UC3);
  const int status = tjDecompress2(handle, bytes.data(), static_cast<unsigned long>(bytes.size()), image.data, width,
                                   static_cast<int>(image.step), height, channels == 1 ? TJPF_GRAY : TJPF_RGB, 0);
  if (status != 0) {
    const std::string message = tjGetErrorStr2(handle);
    // libjpeg fills a truncated image with grey and only warns; that is a corrupt sample here.
    if (message.find("Premature end") != std::string::npos)
      throw DataError(source + ": truncated JPEG (" + message + ")");
    if (tjGetErrorCode(handle) == TJERR_FATAL) return std::nullopt;
  }
  return image;
}

}  // namespace vit::data
