#pragma once

#include <torch/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace vit::app {

// A value of Python's pickle format as torch.save writes it (protocols 2 to 5). Children are
// pointers into the Pickle that owns every value: pickle's memo lets one object appear in several
// places (or inside itself), and freeing the values one by one needs no recursion.
struct PickleValue {
  enum class Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Object, Storage, Tensor };
  Kind kind = Kind::None;
  bool boolean = false;
  int64_t integer = 0;
  double number = 0.0;
  std::string text;                 // String (and bytes); Global: "module.name"; Object: its class or callable
  std::vector<PickleValue*> items;  // Tuple, List; Object: its arguments
  std::vector<std::pair<PickleValue*, PickleValue*>> entries;  // Dict
  torch::Tensor tensor;                                        // Storage: flat [numel] of its dtype; Tensor: the tensor
};

class Unpickler;

// A whole unpickled document.
class Pickle {
 public:
  const PickleValue& root() const { return *root_; }

 private:
  friend class Unpickler;
  std::vector<std::unique_ptr<PickleValue>> values_;
  PickleValue* root_ = nullptr;
};

// The storage of a persistent id ('storage', torch.FloatStorage, key, location, numel): a flat
// tensor of `numel` elements of `dtype` read from the archive's record `key`.
using StorageLoader = std::function<torch::Tensor(const std::string& key, torch::ScalarType dtype, int64_t numel)>;

// Reads a pickle without running any code: the few callables torch.save's state dicts need are
// interpreted (collections.OrderedDict, torch._utils._rebuild_tensor[_v2], _rebuild_parameter,
// torch.jit._pickle.restore_type_tag),
// any other class or callable becomes an opaque Object. Throws std::invalid_argument saying what
// is wrong (unknown opcode, truncated, a tensor outside its storage, ...).
Pickle unpickle(const uint8_t* data, size_t size, const StorageLoader& load_storage);

// The tensors of a torch.save file (a zip archive): the state_dict it holds, whether saved as a
// dict or an OrderedDict (model.state_dict()), directly or inside {"model": ...},
// {"state_dict": ...} or {"model_state": ...} wrappers, with DataParallel's "module." prefix
// removed. Throws std::invalid_argument naming what the file holds instead.
std::vector<std::pair<std::string, torch::Tensor>> read_torch_save(const std::string& file);

}  // namespace vit::app
