#pragma once

#include "support/test_support.h"

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace vit::testing {

// The error contract: the exit code, exactly one "error: ..." line holding every needle, and no
// trace of an abort, an uncaught exception, a crash or a LibTorch C++ stack trace.
void expect_clean_failure(const CommandResult& result, int exit_code, const std::vector<std::string>& needles);

// Every regular file under `root` with its contents.
std::map<std::filesystem::path, std::string> snapshot(const std::filesystem::path& root);
// Every file of `before` is still there with the same contents.
void expect_unchanged(const std::map<std::filesystem::path, std::string>& before);

}  // namespace vit::testing
