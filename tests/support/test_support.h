#pragma once

#include "app/runtime/process.h"  // app::python_interpreter(), which the peer scripts run on
#include "models/kernels/bf16_products.h"
#include "models/vit/vit_options.h"

#include <ATen/core/Tensor.h>
#include <c10/core/Device.h>

#include <filesystem>
#include <string>

namespace vit::testing {

// A fresh directory under the test temp dir, removed when the object goes out of scope.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

void write_file(const std::filesystem::path& file, const std::string& contents);
std::string read_file(const std::filesystem::path& file);

struct CommandResult {
  int exit_code;
  std::string out;  // stdout
  std::string err;  // stderr
};

// A small ViT's options, fields in the paper's order.
models::VitOptions small_vit(int64_t image_size, int64_t patch_size, int64_t in_chans, int64_t num_classes, int64_t dim,
                             int64_t depth, int64_t heads);

// Runs the built `vit` binary with the given arguments (shell-quoted by the caller), with
// `environment` ("NAME=value ...") added to its environment.
CommandResult run_vit(const std::string& arguments, const std::string& environment = "");

// Where the CPU's bf16 products run, for the lifetime of the object.
class ScopedBf16Products {
 public:
  explicit ScopedBf16Products(models::Bf16Products products) : previous_(models::bf16_products()) {
    models::set_bf16_products(products);
  }
  ~ScopedBf16Products() { models::set_bf16_products(previous_); }
  ScopedBf16Products(const ScopedBf16Products&) = delete;
  ScopedBf16Products& operator=(const ScopedBf16Products&) = delete;

 private:
  models::Bf16Products previous_;
};

// LibTorch's intra-op thread count, for the lifetime of the object. The CPU kernels that serve a
// batch slice, whose thread runs its operators alone, run with 1; with more, LibTorch's operators do.
class IntraOpThreads {
 public:
  explicit IntraOpThreads(int threads);
  ~IntraOpThreads();
  IntraOpThreads(const IntraOpThreads&) = delete;
  IntraOpThreads& operator=(const IntraOpThreads&) = delete;

 private:
  int previous_;
};

// ||value - exact|| / ||exact||, in float64.
double relative_error(const at::Tensor& value, const at::Tensor& exact);

// softmax(q k^T · scale + bias) v per head of a qkv projection [B, N, 3·D] (timm's [3, heads,
// head_dim] layout) from LibTorch's own ops, heads merged to [B, N, D]; sequence b takes
// bias[b mod G] (the scores promoted to the bias's dtype, the weights cast back to qkv's): the
// reference of the attention kernels' tests, exact in float64, LibTorch's own products in bf16.
at::Tensor unfused_attention(const at::Tensor& qkv, int64_t heads, double scale, const at::Tensor& bias = {});

// The device of the test suites named *OnDevice: VIT_TEST_DEVICE, cpu by default; cuda on the GPU
// machine (scripts/gpu_check.sh). Asking for CUDA where there is none throws: no quiet CPU run.
c10::Device test_device();
// The same for a `vit` command line: " --device cpu" or " --device cuda".
std::string test_device_flag();

}  // namespace vit::testing
