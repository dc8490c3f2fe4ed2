#include "app/io/torch_pickle.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace vit::testing {
namespace {

using Kind = app::PickleValue::Kind;

std::string unicode(const std::string& text) {
  const auto size = static_cast<uint32_t>(text.size());
  return std::string("X") + static_cast<char>(size & 0xFF) + static_cast<char>((size >> 8) & 0xFF) +
         static_cast<char>((size >> 16) & 0xFF) + static_cast<char>(size >> 24) + text;
}

// torch.save's pickle of one float tensor of `size` and `stride` (one or two dimensions, small
// values) over a storage of `numel` elements, as protocol 2 writes it.
std::string tensor_pickle(const std::string& size, const std::string& stride, int numel) {
  const std::string persistent_id = "((" + unicode("storage") + "ctorch\nFloatStorage\n" + unicode("0") +
                                    unicode("cpu") + "K" + static_cast<char>(numel) + "tQ";
  return "\x80\x02"
         "ctorch._utils\n_rebuild_tensor_v2\n" +
         persistent_id + std::string("K\0", 2) + size + stride +
         "\x89"
         "ccollections\nOrderedDict\n)Rt"
         "R.";
}

std::string tuple_of(std::initializer_list<int> values) {
  std::string text = "(";
  for (const int value : values) text += "K" + std::string(1, static_cast<char>(value));
  return text + "t";
}

app::Pickle read(const std::string& bytes, int* loads = nullptr) {
  return app::unpickle(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(),
                       [&](const std::string& key, torch::ScalarType dtype, int64_t numel) {
                         EXPECT_EQ(key, "0");
                         if (loads != nullptr) ++*loads;
                         return torch::arange(numel, torch::TensorOptions().dtype(dtype));
                       });
}

std::string error_of(const std::string& bytes) {
  try {
    read(bytes);
  } catch (const std::invalid_argument& error) {
    return error.what();
  }
  return "(no error)";
}

TEST(TorchPickle, RebuildsTensorsWithTheirStridesAndOffsets) {
  int loads = 0;
  const auto pickle = read(tensor_pickle(tuple_of({2, 3}), tuple_of({1, 2}), 6), &loads);
  ASSERT_EQ(pickle.root().kind, Kind::Tensor);
  const auto& tensor = pickle.root().tensor;
  EXPECT_EQ(tensor.sizes(), (std::vector<int64_t>{2, 3}));
  // Column-major over 0..5: element (i, j) is i + 2 j.
  EXPECT_TRUE(torch::equal(tensor, torch::tensor({{0.F, 2.F, 4.F}, {1.F, 3.F, 5.F}})));
  EXPECT_EQ(loads, 1);
}

TEST(TorchPickle, RefusesWhatItCannotReadSafely) {
  EXPECT_NE(error_of(tensor_pickle(tuple_of({10}), tuple_of({1}), 4)).find("reaches element 9 of a storage of 4"),
            std::string::npos);
  EXPECT_NE(error_of("\x80\x02}").find("truncated"), std::string::npos);
  EXPECT_NE(error_of("\x80\x02\xff.").find("unsupported pickle opcode 0xff"), std::string::npos);
  EXPECT_NE(error_of("\x80\x02h\x05.").find("memo entry 5"), std::string::npos);
  EXPECT_NE(error_of("\x80\x02}}.").find("2 values on its stack"), std::string::npos);
  EXPECT_NE(error_of("\x80\x02(t0t.").find("unsupported pickle opcode 0x30"), std::string::npos);
  // Anything but the state_dict's callables is kept, not called.
  const auto opaque = read(
      "\x80\x02"
      "cos\nsystem\n(" +
      unicode("echo pwned") + "tR.");
  EXPECT_EQ(opaque.root().kind, Kind::Object);
  EXPECT_EQ(opaque.root().text, "os.system");
}

}  // namespace
}  // namespace vit::testing
