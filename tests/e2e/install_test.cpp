// The command-line tool as installed and as a shell sees it: cmake --install, --version, the
// manual page and bash completion.
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <cctype>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

// Runs `command` in bash; its stdout.
std::string bash_output(const std::string& command, const TempDir& dir) {
  const auto script = dir / "command.sh";
  const auto out = dir / "command.out";
  write_file(script, command);
  EXPECT_EQ(std::system(("bash " + script.string() + " > " + out.string()).c_str()), 0) << command;
  return read_file(out);
}

TEST(Install, TheInstalledVitTrainsWithItsDefaultConfigFromAnyFolder) {
  TempDir dir;
  const auto prefix = dir / "prefix";
  const auto install = "cmake --install " + std::string(VIT_BUILD_DIR) + " --prefix " + prefix.string() + " > " +
                       (dir / "install.log").string();
  ASSERT_EQ(std::system(install.c_str()), 0) << read_file(dir / "install.log");
  for (const auto* file :
       {"bin/vit", "share/vitcpp/configs/fashion_mnist_vit.yaml", "share/vitcpp/scripts/export_onnx.py",
        "share/man/man1/vit.1", "share/bash-completion/completions/vit"}) {
    EXPECT_TRUE(fs::exists(prefix / file)) << file;
  }
  // Run from a folder outside the source and build trees: nothing may depend on them.
  const auto trained = bash_output("cd " + dir.path().string() + " && " + (prefix / "bin/vit").string() +
                                       " train --set train.max_steps=2 --output run 2>&1 && ls run",
                                   dir);
  EXPECT_NE(trained.find("last.ckpt"), std::string::npos) << trained;
  EXPECT_NE(trained.find("events.out.tfevents."), std::string::npos) << trained;
  const auto version = bash_output((prefix / "bin/vit").string() + " --version", dir);
  EXPECT_EQ(version.rfind("vitcpp ", 0), 0u) << version;

  // The manual page: roff with the commands, their options and every config key.
  const auto man = read_file(prefix / "share/man/man1/vit.1");
  EXPECT_EQ(man.rfind(".TH VIT 1", 0), 0u);
  for (const auto* part :
       {".SH COMMANDS", ".SS \"vit train\"", ".SS \"vit data inspect\"", "\\-\\-resume", ".SH CONFIGURATION",
        "train.tensorboard", ".SH ENVIRONMENT", "VIT_BF16_PRODUCTS", ".SH EXIT STATUS"}) {
    EXPECT_NE(man.find(part), std::string::npos) << part;
  }
}

TEST(Version, NamesVitcppLibTorchCudaAndTheBlasInUse) {
  const auto result = run_vit("--version");
  ASSERT_EQ(result.exit_code, 0) << result.err;
  EXPECT_EQ(result.out.rfind("vitcpp 0.1.0", 0), 0u) << result.out;
  EXPECT_NE(result.out.find("\nLibTorch 1."), std::string::npos) << result.out;
  EXPECT_NE(result.out.find("\nCUDA: not available"), std::string::npos) << result.out;
  std::string blas = result.out.substr(result.out.find("\nBLAS: "));
  for (auto& c : blas) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  EXPECT_NE(blas.find("openblas"), std::string::npos) << result.out;  // setup.sh installs libopenblas0-openmp
}

TEST(Completion, BashCompletesCommandsOptionsChoicesAndConfigKeys) {
  TempDir dir;
  const auto script = dir / "vit.bash";
  const auto generated = run_vit("completion bash");
  ASSERT_EQ(generated.exit_code, 0) << generated.err;
  write_file(script, generated.out);
  const auto complete = [&](const std::string& words, int cword) {
    return bash_output("source " + script.string() + "\nCOMP_WORDS=(" + words +
                           ")\nCOMP_CWORD=" + std::to_string(cword) + "\n_vit\necho \"${COMPREPLY[*]}\"\n",
                       dir);
  };
  EXPECT_EQ(complete("vit tr", 1), "train\n");
  EXPECT_EQ(complete("vit ex", 1), "export\n");
  EXPECT_EQ(complete("vit train --ov", 2), "--overwrite\n");
  EXPECT_EQ(complete("vit train --set train.tensor", 3), "train.tensorboard=\n");
  EXPECT_EQ(complete("vit export --format s", 3), "safetensors\n");
  EXPECT_EQ(complete("vit data in", 2), "inspect\n");
  EXPECT_NE(complete("vit data inspect --", 3).find("--samples"), std::string::npos);
  EXPECT_NE(complete("vit --", 1).find("--version"), std::string::npos);
}

}  // namespace
}  // namespace vit::testing
