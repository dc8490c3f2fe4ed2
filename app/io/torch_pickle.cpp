#include "app/io/torch_pickle.h"

#include <caffe2/serialize/inline_container.h>
#include <fmt/format.h>

#include <cstring>
#include <map>
#include <stdexcept>
#include <unordered_map>

namespace vit::app {
namespace {

using Kind = PickleValue::Kind;

[[noreturn]] void bad(const std::string& message) { throw std::invalid_argument(message); }

torch::ScalarType storage_dtype(const std::string& storage_class) {
  static const std::map<std::string, torch::ScalarType> kTypes = {
      {"torch.DoubleStorage", torch::kFloat64}, {"torch.FloatStorage", torch::kFloat32},
      {"torch.HalfStorage", torch::kFloat16},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kInt64},     {"torch.IntStorage", torch::kInt32},
      {"torch.ShortStorage", torch::kInt16},    {"torch.CharStorage", torch::kInt8},
      {"torch.ByteStorage", torch::kUInt8},     {"torch.BoolStorage", torch::kBool}};
  const auto found = kTypes.find(storage_class);
  if (found == kTypes.end()) bad("tensor storage of unsupported type " + storage_class);
  return found->second;
}

std::vector<int64_t> int_tuple(const PickleValue* value, const char* what) {
  if (value->kind != Kind::Tuple) bad(std::string(what) + " is not a tuple");
  std::vector<int64_t> numbers;
  for (const auto& item : value->items) {
    if (item->kind != Kind::Int) bad(std::string(what) + " holds a non-integer");
    numbers.push_back(item->integer);
  }
  return numbers;
}

// torch._utils._rebuild_tensor(_v2)(storage, storage_offset, size, stride, ...): a view into the
// storage, checked to stay inside it, copied out so that nothing aliases the archive's buffers.
torch::Tensor rebuild_tensor(const std::vector<PickleValue*>& arguments) {
  if (arguments.size() < 4 || arguments[0]->kind != Kind::Storage || arguments[1]->kind != Kind::Int) {
    bad("malformed tensor record (expected storage, offset, size, stride)");
  }
  const auto& storage = arguments[0]->tensor;
  const int64_t offset = arguments[1]->integer;
  const auto size = int_tuple(arguments[2], "tensor size");
  const auto stride = int_tuple(arguments[3], "tensor stride");
  if (size.size() != stride.size()) bad("tensor size and stride differ in length");
  int64_t last = offset;
  bool empty = false;
  for (size_t d = 0; d < size.size(); ++d) {
    if (size[d] < 0 || stride[d] < 0) bad("negative tensor size or stride");
    if (size[d] == 0) empty = true;
    if (size[d] > 0 && stride[d] > (int64_t{1} << 40) / size[d]) bad("tensor extent is implausibly large");
    last += (size[d] - 1) * stride[d];
  }
  if (empty) return torch::empty(size, storage.options());
  if (offset < 0 || last >= storage.numel()) {
    bad(fmt::format("tensor reaches element {} of a storage of {}", last, storage.numel()));
  }
  return storage.as_strided(size, stride, offset).clone();
}

}  // namespace

class Unpickler {
 public:
  Unpickler(const uint8_t* data, size_t size, const StorageLoader& load_storage)
      : data_(data), size_(size), load_storage_(load_storage) {}

  Pickle run() {
    while (true) {
      const uint8_t opcode = byte();
      if (opcode == '.') {  // STOP
        if (stack_.size() != 1) bad("pickle ends with " + std::to_string(stack_.size()) + " values on its stack");
        pickle_.root_ = stack_.back();
        return std::move(pickle_);
      }
      step(opcode);
    }
  }

 private:
  PickleValue* make(Kind kind) {
    pickle_.values_.push_back(std::make_unique<PickleValue>());
    pickle_.values_.back()->kind = kind;
    return pickle_.values_.back().get();
  }
  PickleValue* make_int(int64_t integer) {
    auto* value = make(Kind::Int);
    value->integer = integer;
    return value;
  }
  PickleValue* make_text(Kind kind, std::string text) {
    auto* value = make(kind);
    value->text = std::move(text);
    return value;
  }

  uint8_t byte() {
    if (at_ >= size_) bad("truncated pickle");
    return data_[at_++];
  }
  uint64_t little_endian(int bytes) {
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value |= uint64_t{byte()} << (8 * i);
    return value;
  }
  std::string bytes(uint64_t count) {
    if (count > size_ - at_) bad("truncated pickle (a string runs past its end)");
    std::string text(reinterpret_cast<const char*>(data_ + at_), count);
    at_ += count;
    return text;
  }
  std::string line() {
    std::string text;
    for (uint8_t c = byte(); c != '\n'; c = byte()) text.push_back(static_cast<char>(c));
    return text;
  }

  void push(PickleValue* value) { stack_.push_back(value); }
  PickleValue* pop() {
    if (stack_.empty() || (!marks_.empty() && stack_.size() <= marks_.back())) bad("pickle stack underflow");
    auto value = stack_.back();
    stack_.pop_back();
    return value;
  }
  PickleValue* top() {
    if (stack_.empty()) bad("pickle stack underflow");
    return stack_.back();
  }
  // The values above the last MARK, which is removed.
  std::vector<PickleValue*> pop_to_mark() {
    if (marks_.empty()) bad("pickle has no MARK to pop to");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<PickleValue*> values(stack_.begin() + static_cast<std::ptrdiff_t>(mark), stack_.end());
    stack_.resize(mark);
    return values;
  }
  PickleValue* memo(uint64_t index) {
    const auto found = memo_.find(index);
    if (found == memo_.end()) bad("pickle refers to memo entry " + std::to_string(index) + " before setting it");
    return found->second;
  }

  PickleValue* tuple(std::vector<PickleValue*> items) {
    auto* value = make(Kind::Tuple);
    value->items = std::move(items);
    return value;
  }

  void set_items(PickleValue* target, const std::vector<PickleValue*>& pairs) {
    if (target->kind != Kind::Dict) return;  // e.g. state restored into an opaque object
    if (pairs.size() % 2 != 0) bad("odd number of values for dict items");
    for (size_t i = 0; i < pairs.size(); i += 2) target->entries.emplace_back(pairs[i], pairs[i + 1]);
  }

  void append_items(PickleValue* target, const std::vector<PickleValue*>& values) {
    if (target->kind != Kind::List) return;
    target->items.insert(target->items.end(), values.begin(), values.end());
  }

  // Calls only what a state_dict needs; everything else stays an opaque object.
  PickleValue* reduce(PickleValue* callable, PickleValue* arguments) {
    if (callable->kind != Kind::Global) bad("pickle calls something that is not a global");
    if (arguments->kind != Kind::Tuple) bad("pickle calls " + callable->text + " without an argument tuple");
    const auto& name = callable->text;
    if (name == "collections.OrderedDict" && arguments->items.empty()) return make(Kind::Dict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      auto value = make(Kind::Tensor);
      value->tensor = rebuild_tensor(arguments->items);
      return value;
    }
    if ((name == "torch._utils._rebuild_parameter" || name == "torch._utils._rebuild_parameter_with_state") &&
        !arguments->items.empty() && arguments->items[0]->kind == Kind::Tensor) {
      return arguments->items[0];
    }
    // LibTorch's pickle_save (torch::pickle_save, vit export --format pth) tags typed containers
    // with their TorchScript type, e.g. (dict, "Dict[str, Tensor]"): the value is the first argument.
    if (name == "torch.jit._pickle.restore_type_tag" && !arguments->items.empty()) return arguments->items[0];
    auto object = make_text(Kind::Object, name);
    object->items = arguments->items;
    return object;
  }

  PickleValue* persistent_load(PickleValue* id) {
    const auto& parts = id->items;
    if (id->kind != Kind::Tuple || parts.size() != 5 || parts[0]->kind != Kind::String || parts[0]->text != "storage" ||
        parts[1]->kind != Kind::Global || parts[2]->kind != Kind::String || parts[4]->kind != Kind::Int) {
      bad("unsupported persistent id (expected a torch.save storage reference)");
    }
    const auto dtype = storage_dtype(parts[1]->text);
    const auto key = parts[2]->text;
    if (const auto loaded = storages_.find(key); loaded != storages_.end()) return loaded->second;
    if (parts[4]->integer < 0) bad("negative storage size");
    auto storage = make(Kind::Storage);
    storage->tensor = load_storage_(key, dtype, parts[4]->integer);
    storages_.emplace(key, storage);
    return storage;
  }

  void step(uint8_t opcode) {
    switch (opcode) {
      case 0x80:  // PROTO
        if (byte() > 5) bad("pickle protocol newer than 5");
        return;
      case 0x95:  // FRAME: a length prefix that changes nothing here
        little_endian(8);
        return;
      case '}':  // EMPTY_DICT
        return push(make(Kind::Dict));
      case ']':  // EMPTY_LIST
        return push(make(Kind::List));
      case ')':  // EMPTY_TUPLE
        return push(tuple({}));
      case '(':  // MARK
        marks_.push_back(stack_.size());
        return;
      case 't':  // TUPLE
        return push(tuple(pop_to_mark()));
      case 0x85:    // TUPLE1
      case 0x86:    // TUPLE2
      case 0x87: {  // TUPLE3
        std::vector<PickleValue*> items(opcode - 0x84);
        for (auto it = items.rbegin(); it != items.rend(); ++it) *it = pop();
        return push(tuple(std::move(items)));
      }
      case 'N':
        return push(make(Kind::None));
      case 0x88:    // NEWTRUE
      case 0x89: {  // NEWFALSE
        auto value = make(Kind::Bool);
        value->boolean = opcode == 0x88;
        return push(value);
      }
      case 'K':  // BININT1
        return push(make_int(static_cast<int64_t>(little_endian(1))));
      case 'M':  // BININT2
        return push(make_int(static_cast<int64_t>(little_endian(2))));
      case 'J':  // BININT
        return push(make_int(static_cast<int32_t>(little_endian(4))));
      case 0x8a: {  // LONG1
        const int count = byte();
        if (count > 8) bad("integer wider than 64 bits");
        uint64_t raw = little_endian(count);
        if (count > 0 && count < 8 && (raw >> (8 * count - 1)) != 0) raw |= ~uint64_t{0} << (8 * count);  // sign
        return push(make_int(static_cast<int64_t>(raw)));
      }
      case 'G': {  // BINFLOAT, big-endian
        uint64_t raw = 0;
        for (int i = 0; i < 8; ++i) raw = (raw << 8) | byte();
        auto value = make(Kind::Float);
        std::memcpy(&value->number, &raw, sizeof(raw));
        return push(value);
      }
      case 'X':  // BINUNICODE
      case 'T':  // BINSTRING
      case 'B':  // BINBYTES
        return push(make_text(Kind::String, bytes(little_endian(4))));
      case 0x8c:  // SHORT_BINUNICODE
      case 'U':   // SHORT_BINSTRING
      case 'C':   // SHORT_BINBYTES
        return push(make_text(Kind::String, bytes(little_endian(1))));
      case 0x8d:  // BINUNICODE8
      case 0x8e:  // BINBYTES8
        return push(make_text(Kind::String, bytes(little_endian(8))));
      case 'q':  // BINPUT
        memo_[little_endian(1)] = top();
        return;
      case 'r':  // LONG_BINPUT
        memo_[little_endian(4)] = top();
        return;
      case 0x94:  // MEMOIZE
        memo_[memo_.size()] = top();
        return;
      case 'h':  // BINGET
        return push(memo(little_endian(1)));
      case 'j':  // LONG_BINGET
        return push(memo(little_endian(4)));
      case 'c': {  // GLOBAL
        const auto module = line();
        return push(make_text(Kind::Global, module + "." + line()));
      }
      case 0x93: {  // STACK_GLOBAL
        const auto name = pop();
        const auto module = pop();
        if (name->kind != Kind::String || module->kind != Kind::String) bad("STACK_GLOBAL of non-strings");
        return push(make_text(Kind::Global, module->text + "." + name->text));
      }
      case 'R': {  // REDUCE
        const auto arguments = pop();
        const auto callable = pop();
        return push(reduce(callable, arguments));
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        const auto arguments = pop();
        const auto cls = pop();
        if (cls->kind != Kind::Global) bad("NEWOBJ of something that is not a class");
        auto object = make_text(Kind::Object, cls->text);
        object->items = arguments->items;
        return push(object);
      }
      case 'b':  // BUILD: object state (e.g. a state_dict's _metadata), not needed here
        pop();
        top();
        return;
      case 's': {  // SETITEM
        const auto value = pop();
        const auto key = pop();
        set_items(top(), {key, value});
        return;
      }
      case 'u': {  // SETITEMS
        const auto pairs = pop_to_mark();
        set_items(top(), pairs);
        return;
      }
      case 'a': {  // APPEND
        const auto value = pop();
        append_items(top(), {value});
        return;
      }
      case 'e': {  // APPENDS
        const auto values = pop_to_mark();
        append_items(top(), values);
        return;
      }
      case 'Q':  // BINPERSID
        return push(persistent_load(pop()));
      default:
        bad(fmt::format("unsupported pickle opcode 0x{:02x} at byte {}", opcode, at_ - 1));
    }
  }

  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
  const StorageLoader& load_storage_;
  std::vector<PickleValue*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, PickleValue*> memo_;
  std::map<std::string, PickleValue*> storages_;
  Pickle pickle_;
};

namespace {

bool is_state_dict(const PickleValue* value) {
  if (value->kind != Kind::Dict || value->entries.empty()) return false;
  for (const auto& [key, item] : value->entries) {
    if (key->kind != Kind::String || item->kind != Kind::Tensor) return false;
  }
  return true;
}

// The state_dict in what torch.save stored: the dict itself, or the one under a wrapper's key.
const PickleValue* find_state_dict(const PickleValue* value, int depth = 0) {
  if (is_state_dict(value)) return value;
  if (value->kind != Kind::Dict || depth > 2) return nullptr;
  for (const char* wrapper : {"model", "state_dict", "model_state", "model_state_dict", "module"}) {
    for (const auto& [key, item] : value->entries) {
      if (key->kind == Kind::String && key->text == wrapper) {
        if (auto found = find_state_dict(item, depth + 1)) return found;
      }
    }
  }
  return nullptr;
}

std::string describe(const PickleValue* value) {
  switch (value->kind) {
    case Kind::Dict: {
      std::string keys;
      for (size_t i = 0; i < value->entries.size() && i < 6; ++i) {
        const auto& key = value->entries[i].first;
        keys += (i > 0 ? ", " : "") + (key->kind == Kind::String ? key->text : std::string("?"));
      }
      return "a dict without tensors under the keys a state_dict is saved under (its keys: " + keys +
             (value->entries.size() > 6 ? ", ..." : "") + ")";
    }
    case Kind::Tensor:
      return "a single tensor";
    case Kind::Object:
      return "a " + value->text + " object (a whole pickled model? save its state_dict() instead)";
    default:
      return "no dict of tensors";
  }
}

}  // namespace

Pickle unpickle(const uint8_t* data, size_t size, const StorageLoader& load_storage) {
  return Unpickler(data, size, load_storage).run();
}

std::vector<std::pair<std::string, torch::Tensor>> read_torch_save(const std::string& file) {
  caffe2::serialize::PyTorchStreamReader archive(file);
  const auto [pickle_bytes, pickle_size] = archive.getRecord("data.pkl");
  const auto load_storage = [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
    const auto record = "data/" + key;
    if (!archive.hasRecord(record)) bad("the archive has no record " + record);
    auto [bytes, size] = archive.getRecord(record);
    const auto element = static_cast<int64_t>(c10::elementSize(dtype));
    if (numel > static_cast<int64_t>(size) / element) {
      bad(fmt::format("storage {} declares {} elements but holds {} bytes", key, numel, size));
    }
    auto storage = torch::empty({numel}, torch::TensorOptions().dtype(dtype));
    std::memcpy(storage.data_ptr(), bytes.get(), static_cast<size_t>(numel * element));
    return storage;
  };
  const auto document = unpickle(static_cast<const uint8_t*>(pickle_bytes.get()), pickle_size, load_storage);
  const auto* state_dict = find_state_dict(&document.root());
  if (state_dict == nullptr) bad("holds " + describe(&document.root()));
  // DataParallel and DistributedDataParallel save every name with "module." in front.
  bool wrapped = true;
  for (const auto& [key, tensor] : state_dict->entries) wrapped = wrapped && key->text.rfind("module.", 0) == 0;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (const auto& [key, tensor] : state_dict->entries) {
    tensors.emplace_back(wrapped ? key->text.substr(7) : key->text, tensor->tensor);
  }
  return tensors;
}

}  // namespace vit::app
