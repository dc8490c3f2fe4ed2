#include "support/robustness_support.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace vit::testing {

void expect_clean_failure(const CommandResult& result, int exit_code, const std::vector<std::string>& needles) {
  EXPECT_EQ(result.exit_code, exit_code) << result.err;
  size_t error_lines = 0;
  std::string error_line;
  for (size_t start = 0; start < result.err.size();) {
    const size_t end = std::min(result.err.find('\n', start), result.err.size());
    const auto line = result.err.substr(start, end - start);
    if (line.rfind("error: ", 0) == 0) {
      ++error_lines;
      error_line = line;
    }
    start = end + 1;
  }
  EXPECT_EQ(error_lines, 1u) << result.err;
  for (const auto& needle : needles) EXPECT_NE(error_line.find(needle), std::string::npos) << result.err;
  for (const char* sign : {"terminate called", "Exception raised from", "frame #", "Segmentation", "Aborted",
                           "core dumped", "AddressSanitizer", "runtime error:"}) {
    EXPECT_EQ(result.err.find(sign), std::string::npos) << sign << " in:\n" << result.err;
  }
}

std::map<std::filesystem::path, std::string> snapshot(const std::filesystem::path& root) {
  std::map<std::filesystem::path, std::string> files;
  std::error_code error;
  for (auto it = std::filesystem::recursive_directory_iterator(root, error);
       !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    if (it->is_regular_file(error) && !it->is_symlink(error)) files[it->path()] = read_file(it->path());
  }
  return files;
}

void expect_unchanged(const std::map<std::filesystem::path, std::string>& before) {
  for (const auto& [file, contents] : before) {
    EXPECT_TRUE(std::filesystem::exists(file)) << file << " was removed";
    EXPECT_TRUE(read_file(file) == contents) << file << " was changed";
  }
}

}  // namespace vit::testing
