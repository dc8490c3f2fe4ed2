#include "app/run_directory.h"

#include <algorithm>
#include <array>
#include <regex>

namespace vit::app {
namespace {

bool written_by_training(const std::string& name) {
  static const std::array<const char*, 8> kFixed = {"config.yaml", "last.ckpt", "best.ckpt",    "metrics.csv",
                                                    "steps.csv",   "loss.png",  "accuracy.png", "lr.png"};
  static const std::regex kEpochCheckpoint(R"(epoch_\d{4,}\.ckpt)");
  return std::find(kFixed.begin(), kFixed.end(), name) != kFixed.end() || std::regex_match(name, kEpochCheckpoint);
}

}  // namespace

std::vector<std::filesystem::path> run_files(const std::filesystem::path& dir) {
  std::vector<std::filesystem::path> files;
  std::error_code error;
  for (const auto& entry : std::filesystem::directory_iterator(dir, error)) {
    if (written_by_training(entry.path().filename().string())) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

void remove_run_files(const std::filesystem::path& dir) {
  for (const auto& file : run_files(dir)) std::filesystem::remove(file);
}

}  // namespace vit::app
