#include "data/idx_file.h"

#include "data/errors.h"
#include "data/regular_file.h"

#include <zlib.h>

#include <array>
#include <cstring>
#include <memory>
#include <vector>

namespace vit::data {
namespace {

constexpr uint8_t kUnsignedByteType = 0x08;
constexpr int kMaxDimensions = 4;
constexpr size_t kChunkBytes = size_t{1} << 20;

struct GzCloser {
  void operator()(gzFile_s* file) const { gzclose(file); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& message) {
  throw DataError(file.string() + ": " + message);
}

// Reads up to `wanted` bytes; zlib passes raw (uncompressed) files through unchanged.
size_t read_some(gzFile_s* stream, const std::filesystem::path& file, uint8_t* into, size_t wanted) {
  const int got = gzread(stream, into, static_cast<unsigned>(wanted));
  if (got < 0) fail(file, "corrupt gzip stream");
  return static_cast<size_t>(got);
}

}  // namespace

torch::Tensor read_idx_file(const std::filesystem::path& file) {
  GzFile stream(gzdopen(RegularFile(file, "IDX").release(), "rb"));
  if (!stream) fail(file, "cannot open IDX file");

  std::array<uint8_t, 4> magic{};
  if (read_some(stream.get(), file, magic.data(), magic.size()) != magic.size())
    fail(file, "too short for an IDX header");
  if (magic[0] != 0 || magic[1] != 0 || magic[2] != kUnsignedByteType || magic[3] < 1 || magic[3] > kMaxDimensions) {
    fail(file, "bad IDX magic number (expected 00 00 08 0N for unsigned-byte data)");
  }

  std::vector<int64_t> dims(magic[3]);
  size_t total = 1;
  for (auto& dim : dims) {
    std::array<uint8_t, 4> bytes{};
    if (read_some(stream.get(), file, bytes.data(), bytes.size()) != bytes.size()) fail(file, "truncated IDX header");
    dim = (int64_t{bytes[0]} << 24) | (int64_t{bytes[1]} << 16) | (int64_t{bytes[2]} << 8) | int64_t{bytes[3]};
    if (dim == 0 && &dim != &dims.front()) fail(file, "declares an item of size 0 (e.g. 0x0-pixel images)");
    if (dim > 0 && total > (size_t{1} << 40) / static_cast<size_t>(dim))
      fail(file, "declared size is implausibly large");
    total *= static_cast<size_t>(dim);
  }

  // Grow with the data actually present instead of trusting the header with one allocation.
  std::vector<uint8_t> body;
  while (body.size() < total) {
    const size_t wanted = std::min(kChunkBytes, total - body.size());
    const size_t offset = body.size();
    body.resize(offset + wanted);
    const size_t got = read_some(stream.get(), file, body.data() + offset, wanted);
    body.resize(offset + got);
    if (got == 0) {
      fail(file, "truncated: header declares " + std::to_string(total) + " bytes of data, file has " +
                     std::to_string(body.size()));
    }
  }
  uint8_t extra = 0;
  if (read_some(stream.get(), file, &extra, 1) != 0) fail(file, "more data than the header declares");

  auto tensor = torch::empty(dims, torch::kUInt8);
  if (total > 0) std::memcpy(tensor.data_ptr<uint8_t>(), body.data(), total);
  return tensor;
}

}  // namespace vit::data
