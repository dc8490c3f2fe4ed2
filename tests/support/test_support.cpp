#include "support/test_support.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <torch/cuda.h>

#include <unistd.h>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace vit::testing {

c10::Device test_device() {
  const char* requested = std::getenv("VIT_TEST_DEVICE");
  const c10::Device device(requested == nullptr || *requested == '\0' ? "cpu" : requested);
  if (device.is_cuda() && !torch::cuda::is_available()) {
    throw std::runtime_error("VIT_TEST_DEVICE=" + std::string(requested) + " but LibTorch sees no CUDA device");
  }
  return device;
}

std::string test_device_flag() { return " --device " + test_device().str(); }

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::path(::testing::TempDir()) /
          ("vit_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

void write_file(const std::filesystem::path& file, const std::string& contents) {
  std::ofstream stream(file, std::ios::binary);
  stream << contents;
}

std::string read_file(const std::filesystem::path& file) {
  std::ifstream stream(file, std::ios::binary);
  std::stringstream contents;
  contents << stream.rdbuf();
  return contents.str();
}

CommandResult run_vit(const std::string& arguments, const std::string& environment) {
  TempDir scratch;
  const auto out = scratch / "stdout";
  const auto err = scratch / "stderr";
  const auto command = environment + " " + VIT_BINARY + " " + arguments + " >" + out.string() + " 2>" + err.string();
  const int status = std::system(command.c_str());
  const int exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {exit_code, read_file(out), read_file(err)};
}

models::VitOptions small_vit(int64_t image_size, int64_t patch_size, int64_t in_chans, int64_t num_classes, int64_t dim,
                             int64_t depth, int64_t heads) {
  models::VitOptions options;
  options.image_size = image_size;
  options.patch_size = patch_size;
  options.in_chans = in_chans;
  options.num_classes = num_classes;
  options.embed_dim = dim;
  options.depth = depth;
  options.num_heads = heads;
  return options;
}

IntraOpThreads::IntraOpThreads(int threads) : previous_(at::get_num_threads()) { at::set_num_threads(threads); }

IntraOpThreads::~IntraOpThreads() { at::set_num_threads(previous_); }

double relative_error(const at::Tensor& value, const at::Tensor& exact) {
  const auto exact64 = exact.to(at::kDouble);
  return (value.to(at::kDouble) - exact64).norm().item<double>() / exact64.norm().item<double>();
}

at::Tensor unfused_attention(const at::Tensor& qkv, int64_t heads, double scale, const at::Tensor& bias) {
  const auto parts = qkv.unflatten(-1, {3, heads, -1}).permute({2, 0, 3, 1, 4});
  auto scores = at::matmul(parts[0], parts[1].transpose(-2, -1)).mul(scale);
  if (bias.defined()) scores = (scores.unflatten(0, {-1, bias.size(0)}) + bias).flatten(0, 1);
  const auto weights = scores.softmax(-1).to(qkv.scalar_type());
  return at::matmul(weights, parts[2]).transpose(1, 2).flatten(2);
}

}  // namespace vit::testing
