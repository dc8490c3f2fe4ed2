#include "app/io/weight_files.h"

#include "app/errors.h"
#include "app/io/byte_order.h"
#include "app/io/file_util.h"
#include "app/io/torch_pickle.h"
#include "data/errors.h"
#include "data/regular_file.h"

#include <c10/util/Exception.h>
#include <fmt/format.h>
#include <sys/mman.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <nlohmann/json.hpp>

#include <cstring>
#include <memory>

namespace vit::app {
namespace {

[[noreturn]] void fail(const std::filesystem::path& file, const std::string& message) {
  throw FileError(file.string() + ": " + message);
}

// A whole file mapped copy-on-write: tensors point into it, and it stays mapped while any does.
class MappedFile {
 public:
  explicit MappedFile(const std::filesystem::path& file) {
    const data::RegularFile regular(file, "weight");
    size_ = static_cast<size_t>(regular.size());
    if (size_ > 0) {
      void* data = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, regular.descriptor(), 0);
      if (data == MAP_FAILED) fail(file, std::string("cannot map: ") + std::strerror(errno));
      data_ = static_cast<char*>(data);
    }
  }
  ~MappedFile() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
};

struct SafetensorsType {
  const char* name;
  torch::ScalarType type;
};
constexpr SafetensorsType kSafetensorsTypes[] = {
    {"F64", torch::kFloat64}, {"F32", torch::kFloat32}, {"F16", torch::kFloat16}, {"BF16", torch::kBFloat16},
    {"I64", torch::kInt64},   {"I32", torch::kInt32},   {"I16", torch::kInt16},   {"I8", torch::kInt8},
    {"U8", torch::kUInt8},    {"BOOL", torch::kBool}};

constexpr uint64_t kMaxHeaderBytes = 100u << 20;  // safetensors' own limit

// The length of the JSON header, in the file's first 8 bytes (the caller checks there are 8).
uint64_t header_bytes(const MappedFile& mapped) { return get_le(reinterpret_cast<const uint8_t*>(mapped.data()), 8); }

bool looks_like_safetensors(const MappedFile& mapped) {
  if (mapped.size() < 10) return false;
  const uint64_t header_size = header_bytes(mapped);
  return header_size <= kMaxHeaderBytes && header_size + 8 <= mapped.size() && mapped.data()[8] == '{';
}

nlohmann::json safetensors_header(const std::filesystem::path& file, const MappedFile& mapped) {
  if (mapped.size() < 8) fail(file, "too short for a safetensors file (no 8-byte header length)");
  const uint64_t header_size = header_bytes(mapped);
  if (header_size > kMaxHeaderBytes || header_size > mapped.size() - 8) {
    fail(file, fmt::format("safetensors header length {} does not fit the {}-byte file", header_size, mapped.size()));
  }
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(mapped.data() + 8, mapped.data() + 8 + header_size);
  } catch (const nlohmann::json::exception& error) {
    fail(file, std::string("safetensors header is not JSON: ") + error.what());
  }
  if (!header.is_object()) fail(file, "safetensors header is not a JSON object");
  return header;
}

NamedTensors parse_safetensors(const std::filesystem::path& file, const std::shared_ptr<MappedFile>& mapped) {
  const auto header = safetensors_header(file, *mapped);
  const uint64_t header_size = header_bytes(*mapped);
  char* const data = mapped->data() + 8 + header_size;
  const uint64_t data_size = mapped->size() - 8 - header_size;
  NamedTensors tensors;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") continue;
    const auto where = "safetensors tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets") ||
        !entry["dtype"].is_string() || !entry["shape"].is_array() || !entry["data_offsets"].is_array() ||
        entry["data_offsets"].size() != 2) {
      fail(file, where + ": expected {\"dtype\", \"shape\", \"data_offsets\": [begin, end]}");
    }
    const auto dtype = entry["dtype"].get<std::string>();
    const auto* type = std::find_if(std::begin(kSafetensorsTypes), std::end(kSafetensorsTypes),
                                    [&](const SafetensorsType& known) { return dtype == known.name; });
    if (type == std::end(kSafetensorsTypes)) fail(file, where + ": unsupported dtype " + dtype);
    std::vector<int64_t> shape;
    uint64_t elements = 1;
    for (const auto& dimension : entry["shape"]) {
      if (!dimension.is_number_unsigned() || dimension.get<uint64_t>() > (uint64_t{1} << 40)) {
        fail(file, where + ": shape entries must be non-negative integers");
      }
      const auto extent = dimension.get<uint64_t>();
      // Checked before multiplying, so the count can never wrap around.
      if (extent != 0 && elements > (uint64_t{1} << 40) / extent) fail(file, where + ": shape too large");
      shape.push_back(static_cast<int64_t>(extent));
      elements *= extent;
    }
    const auto& offsets = entry["data_offsets"];
    if (!offsets[0].is_number_unsigned() || !offsets[1].is_number_unsigned()) {
      fail(file, where + ": data_offsets must be non-negative integers");
    }
    const auto begin = offsets[0].get<uint64_t>();
    const auto end = offsets[1].get<uint64_t>();
    const uint64_t bytes = elements * c10::elementSize(type->type);
    if (begin > end || end > data_size || end - begin != bytes) {
      fail(file, fmt::format("{}: data_offsets [{}, {}] do not hold {} bytes of {} {} inside the {}-byte data", where,
                             begin, end, bytes, dtype, entry["shape"].dump(), data_size));
    }
    // The tensor keeps the mapping alive; nothing is copied until the model takes the values.
    tensors[name] = torch::from_blob(
        data + begin, shape, [mapped](void*) {}, torch::TensorOptions().dtype(type->type));
  }
  return tensors;
}

TextMetadata metadata_of(const std::filesystem::path& file, const nlohmann::json& header) {
  TextMetadata metadata;
  if (!header.contains("__metadata__")) return metadata;
  const auto& entries = header["__metadata__"];
  if (!entries.is_object()) fail(file, "safetensors __metadata__ is not a JSON object");
  for (const auto& [key, value] : entries.items()) {
    if (!value.is_string()) fail(file, "safetensors __metadata__ value '" + key + "' is not a string");
    metadata[key] = value.get<std::string>();
  }
  return metadata;
}

}  // namespace

NamedTensors read_safetensors(const std::filesystem::path& file) {
  return parse_safetensors(file, std::make_shared<MappedFile>(file));
}

TextMetadata read_safetensors_metadata(const std::filesystem::path& file) {
  return metadata_of(file, safetensors_header(file, MappedFile(file)));
}

NamedTensors read_torch_pickle(const std::filesystem::path& file) {
  NamedTensors tensors;
  try {
    for (auto& [name, tensor] : read_torch_save(file.string())) {
      if (!tensors.emplace(name, std::move(tensor)).second) fail(file, "tensor '" + name + "' appears twice");
    }
  } catch (const std::invalid_argument& error) {
    fail(file, std::string("not a torch.save file of a state_dict: ") + error.what());
  } catch (const c10::Error& error) {
    fail(file, std::string("not a readable torch.save archive: ") + error.what_without_backtrace());
  }
  return tensors;
}

WeightFile read_weight_file(const std::filesystem::path& file) {
  auto mapped = std::make_shared<MappedFile>(file);
  // A damaged .safetensors file gets the safetensors parser's errors rather than LibTorch's.
  if (file.extension() == ".safetensors" || looks_like_safetensors(*mapped)) {
    return {parse_safetensors(file, mapped), metadata_of(file, safetensors_header(file, *mapped))};
  }
  if (mapped->size() < 4 || std::memcmp(mapped->data(), "PK\x03\x04", 4) != 0) {
    fail(file, "neither a safetensors file nor a torch.save archive (zip)");
  }
  return {read_torch_pickle(file), {}};
}

void write_safetensors(const std::filesystem::path& file, const NamedTensors& tensors, const TextMetadata& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contents;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    const auto scalar_type = tensor.scalar_type();  // (a lambda may not capture a structured binding before C++20)
    const auto* type = std::find_if(std::begin(kSafetensorsTypes), std::end(kSafetensorsTypes),
                                    [&](const SafetensorsType& known) { return known.type == scalar_type; });
    if (type == std::end(kSafetensorsTypes)) {
      throw std::invalid_argument(file.string() + ": tensor '" + name + "' has a type safetensors cannot hold");
    }
    contents.push_back(tensor.detach().to(torch::kCPU).contiguous());
    const uint64_t bytes = contents.back().nbytes();
    header[name] = {{"dtype", type->name}, {"shape", tensor.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  auto text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  write_stream_atomically(file, [&](const ByteSink& sink) {
    uint8_t header_size[8];
    put_le(header_size, text.size(), 8);
    sink(header_size, sizeof(header_size));
    sink(text.data(), text.size());
    for (const auto& tensor : contents) sink(tensor.data_ptr(), tensor.nbytes());
  });
}

void write_torch_state_dict(const std::filesystem::path& file, const NamedTensors& tensors) {
  c10::Dict<std::string, torch::Tensor> state_dict;
  for (const auto& [name, tensor] : tensors) state_dict.insert(name, tensor.detach().to(torch::kCPU).contiguous());
  const auto archive = torch::jit::pickle_save(c10::IValue(state_dict));
  write_stream_atomically(file, [&](const ByteSink& sink) { sink(archive.data(), archive.size()); });
}

}  // namespace vit::app
