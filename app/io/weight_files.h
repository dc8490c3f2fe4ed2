#pragma once

// Weight files from the Python ecosystem, read into named tensors: safetensors (memory-mapped,
// no copies) and torch.save archives of a state_dict (a dict or model.state_dict()'s OrderedDict,
// optionally inside a {"model": ...} or {"state_dict": ...} wrapper as DeiT's releases and
// training scripts save them, "module." prefixes removed), read by our own pickle reader.

#include "models/core/named_tensors.h"

#include <filesystem>

namespace vit::app {

using models::NamedTensors;

// Throws data::DataError naming the file and the tensor or header field that is wrong.
NamedTensors read_safetensors(const std::filesystem::path& file);
NamedTensors read_torch_pickle(const std::filesystem::path& file);
// By name or content: a .safetensors file or safetensors' JSON header, else a torch.save zip archive.
NamedTensors read_weight_file(const std::filesystem::path& file);

}  // namespace vit::app
