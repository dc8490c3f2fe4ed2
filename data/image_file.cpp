#include "data/image_file.h"

#include "data/dataset.h"
#include "data/errors.h"
#include "data/jpeg_decoder.h"
#include "data/regular_file.h"

#include <opencv2/imgcodecs.hpp>

#include <cstdint>

namespace vit::data {
namespace {

uint32_t big_endian(const std::vector<uint8_t>& b, size_t at, int bytes) {
  uint32_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | b[at + i];
  return value;
}

uint32_t little_endian(const std::vector<uint8_t>& b, size_t at, int bytes) {
  uint32_t value = 0;
  for (int i = bytes - 1; i >= 0; --i) value = (value << 8) | b[at + i];
  return value;
}

bool starts_with(const std::vector<uint8_t>& b, const char* magic, size_t length, size_t at = 0) {
  if (b.size() < at + length) return false;
  for (size_t i = 0; i < length; ++i) {
    if (b[at + i] != static_cast<uint8_t>(magic[i])) return false;
  }
  return true;
}

std::optional<ImageSize> png_size(const std::vector<uint8_t>& b) {
  if (b.size() < 24 || !starts_with(b, "IHDR", 4, 12)) return std::nullopt;
  return ImageSize{big_endian(b, 16, 4), big_endian(b, 20, 4)};
}

std::optional<ImageSize> jpeg_size(const std::vector<uint8_t>& b) {
  size_t at = 2;
  while (at + 4 <= b.size()) {
    if (b[at] != 0xFF) return std::nullopt;
    const uint8_t marker = b[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7)) {  // no length field
      at += 2;
      continue;
    }
    const size_t length = big_endian(b, at + 2, 2);
    const bool start_of_frame = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (start_of_frame) {
      if (at + 9 > b.size()) return std::nullopt;
      return ImageSize{big_endian(b, at + 7, 2), big_endian(b, at + 5, 2)};
    }
    if (length < 2) return std::nullopt;
    at += 2 + length;
  }
  return std::nullopt;
}

std::optional<ImageSize> bmp_size(const std::vector<uint8_t>& b) {
  if (b.size() < 26) return std::nullopt;
  const auto width = static_cast<int32_t>(little_endian(b, 18, 4));
  const auto height = static_cast<int32_t>(little_endian(b, 22, 4));
  return ImageSize{std::abs(int64_t{width}), std::abs(int64_t{height})};  // negative height: top-down rows
}

std::optional<ImageSize> webp_size(const std::vector<uint8_t>& b) {
  if (b.size() < 30) return std::nullopt;
  if (starts_with(b, "VP8X", 4, 12)) return ImageSize{little_endian(b, 24, 3) + 1, little_endian(b, 27, 3) + 1};
  if (starts_with(b, "VP8L", 4, 12)) {
    const uint32_t bits = little_endian(b, 21, 4);
    return ImageSize{(bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1};
  }
  if (starts_with(b, "VP8 ", 4, 12))
    return ImageSize{little_endian(b, 26, 2) & 0x3FFF, little_endian(b, 28, 2) & 0x3FFF};
  return std::nullopt;
}

std::optional<ImageSize> tiff_size(const std::vector<uint8_t>& b) {
  const bool little = b[0] == 'I';
  const auto read = [&](size_t at, int bytes) -> uint32_t {
    return little ? little_endian(b, at, bytes) : big_endian(b, at, bytes);
  };
  const size_t directory = read(4, 4);
  if (directory + 2 > b.size()) return std::nullopt;
  const size_t entries = read(directory, 2);
  int64_t width = -1;
  int64_t height = -1;
  for (size_t i = 0; i < entries; ++i) {
    const size_t entry = directory + 2 + 12 * i;
    if (entry + 12 > b.size()) return std::nullopt;
    const uint32_t tag = read(entry, 2);
    const uint32_t type = read(entry + 2, 2);
    const uint32_t value = type == 3 ? read(entry + 8, 2) : read(entry + 8, 4);  // SHORT or LONG
    if (tag == 256) width = value;
    if (tag == 257) height = value;
  }
  if (width < 0 || height < 0) return std::nullopt;
  return ImageSize{width, height};
}

// Larger than any image a dataset holds; a bound on what one read may allocate.
constexpr uint64_t kMaxImageFileBytes = uint64_t{1} << 30;

void check_declared_size(const std::filesystem::path& file, const ImageSize& size, int64_t max_pixels) {
  if (size.width <= 0 || size.height <= 0) throw DataError(file.string() + ": header declares an empty image");
  if (size.width > max_pixels || size.height > max_pixels || size.width * size.height > max_pixels) {
    throw DataError(file.string() + ": header declares " + std::to_string(size.width) + "x" +
                    std::to_string(size.height) + " pixels, more than data.max_pixels = " + std::to_string(max_pixels));
  }
}

}  // namespace

std::optional<ImageSize> read_image_size(const std::vector<uint8_t>& b) {
  if (starts_with(b, "\x89PNG\r\n\x1a\n", 8)) return png_size(b);
  if (starts_with(b, "\xFF\xD8", 2)) return jpeg_size(b);
  if (starts_with(b, "BM", 2)) return bmp_size(b);
  if (starts_with(b, "RIFF", 4) && starts_with(b, "WEBP", 4, 8)) return webp_size(b);
  if (starts_with(b, "II*\0", 4) || starts_with(b, "MM\0*", 4)) {
    if (b.size() < 8) return std::nullopt;
    return tiff_size(b);
  }
  return std::nullopt;
}

std::optional<ImageSize> read_image_file_size(const std::filesystem::path& file) {
  return read_image_size(RegularFile(file, "image").read_prefix(uint64_t{1} << 20));
}

cv::Mat read_image(const std::filesystem::path& file, int channels, int64_t max_pixels) {
  const auto bytes = RegularFile(file, "image").read_all(kMaxImageFileBytes);
  if (bytes.empty()) throw DataError(file.string() + ": empty file");
  // JPEGs: TurboJPEG's own header parser sizes the image (it tolerates bytes that ours does not),
  // and the decoder refuses one larger than max_pixels before allocating it.
  if (starts_with(bytes, "\xFF\xD8", 2)) {
    const auto decoded = decode_jpeg(bytes, channels, max_pixels, file.string());
    if (decoded.image) return *decoded.image;
    if (!decoded.size) throw DataError(file.string() + ": not a readable JPEG (" + decoded.header_error + ")");
    check_declared_size(file, *decoded.size, max_pixels);
  } else {
    // What the content is decides, not the file name: only formats whose size is known before
    // decoding are decoded (a PGM named .png is refused instead of decoded at any size).
    const auto size = read_image_size(bytes);
    if (!size) {
      throw DataError(file.string() +
                      ": not a readable image (the header is none of JPEG, PNG, BMP, WebP, TIFF, or is damaged)");
    }
    check_declared_size(file, *size, max_pixels);
  }
  const int mode = (channels == 1 ? cv::IMREAD_GRAYSCALE : cv::IMREAD_COLOR) | cv::IMREAD_IGNORE_ORIENTATION;
  cv::Mat decoded;
  try {
    decoded = cv::imdecode(cv::_InputArray(bytes.data(), static_cast<int>(bytes.size())), mode);
  } catch (const cv::Exception& error) {
    throw DataError(file.string() + ": cannot decode image: " + error.err);
  }
  if (decoded.empty()) throw DataError(file.string() + ": not a readable image (corrupt or unsupported format)");
  return to_channels(decoded, channels);
}

}  // namespace vit::data
