#pragma once

// Weight files of the Python ecosystem, read into named tensors and written from them: safetensors (memory-mapped,
// no copies) and torch.save archives of a state_dict (a dict or model.state_dict()'s OrderedDict,
// optionally inside a {"model": ...} or {"state_dict": ...} wrapper as DeiT's releases and
// training scripts save them, "module." prefixes removed), read by our own pickle reader.

#include "models/core/named_tensors.h"

#include <filesystem>
#include <map>
#include <string>

namespace vit::app {

using models::NamedTensors;
using TextMetadata = std::map<std::string, std::string>;

// Throws data::DataError naming the file and the tensor or header field that is wrong.
NamedTensors read_safetensors(const std::filesystem::path& file);
NamedTensors read_torch_pickle(const std::filesystem::path& file);
// A safetensors file's __metadata__ (string values only, as the format defines it); empty when
// it has none.
TextMetadata read_safetensors_metadata(const std::filesystem::path& file);
struct WeightFile {
  NamedTensors tensors;
  TextMetadata metadata;  // safetensors' __metadata__; none in torch.save files
};
// By name or content: a .safetensors file or safetensors' JSON header, else a torch.save zip archive.
WeightFile read_weight_file(const std::filesystem::path& file);

// Writes `tensors` (copied to the CPU, contiguous, in name order) as a safetensors file with
// `metadata` as its __metadata__, atomically; the header is padded to 8 bytes so that every
// tensor's data is aligned, as the safetensors library writes it.
void write_safetensors(const std::filesystem::path& file, const NamedTensors& tensors, const TextMetadata& metadata);
// Writes `tensors` as torch.save writes a state_dict (a zip archive holding a pickled dict), so
// that Python's torch.load returns {name: tensor}; atomically.
void write_torch_state_dict(const std::filesystem::path& file, const NamedTensors& tensors);

}  // namespace vit::app
