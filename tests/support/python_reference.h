#pragma once

#include "support/test_support.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace vit::testing {

// A test suite comparing with files that a Python script of the repository (Derived::kScript,
// relative to the source tree) writes once into a temporary folder for all its tests.
template <typename Derived>
class PythonReferenceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const auto command = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) + "/" + Derived::kScript + " " +
                         dir_->path().string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::filesystem::path file(const std::string& name) { return *dir_ / name; }

 private:
  static inline TempDir* dir_ = nullptr;
};

}  // namespace vit::testing
