// Every option of `vit eval`, `vit predict` and `vit export` changes what the command produces:
// each runs without and with the option (or with two values of it), and what the option is for
// is compared. The option list comes from the command's own --help, so an option added later
// without a case here fails the test, as does a case for an option that is gone.
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <sstream>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

// The long name (the short one when there is none) of each option of a subcommand, and the names
// of its positionals, from its --help text.
std::set<std::string> documented_options(const std::string& command) {
  const auto help = run_vit(command + " --help");
  EXPECT_EQ(help.exit_code, 0) << help.err;
  std::set<std::string> names;
  std::istringstream lines(help.out);
  enum class Section { Other, Positionals, Options } section = Section::Other;
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty() && line[0] != ' ') {
      section = line.rfind("Positionals:", 0) == 0 ? Section::Positionals
                : line.rfind("Options:", 0) == 0   ? Section::Options
                                                   : Section::Other;
      continue;
    }
    // An entry starts at column 2; its wrapped description is indented further.
    if (section == Section::Other || line.size() < 3 || line.compare(0, 2, "  ") != 0 || line[2] == ' ') continue;
    const auto spec = line.substr(2, line.find(' ', 2) - 2);
    std::string chosen;
    std::istringstream forms(spec);
    for (std::string form; std::getline(forms, form, ',');) {
      if (chosen.empty() || form.rfind("--", 0) == 0) chosen = form;
    }
    names.insert(section == Section::Positionals ? spec : chosen);
  }
  return names;
}

enum class FlagEffect {
  Stdout,          // exit code and standard output
  StderrLines,     // how many lines the log has
  ThreadLine,      // the log line that names the thread count
  FileAtOut,       // whether {out}<suffix> exists, and its contents
  ExportedLogits,  // `vit predict --json` with the TorchScript file written at {out}.pt
  NotHere,         // cannot show on this machine; `why` says
};

struct FlagCase {
  std::string option;  // as documented_options() names it
  std::string without;
  std::string with;
  FlagEffect observe = FlagEffect::Stdout;
  std::string suffix = "";  // FileAtOut
  std::string why = "";
};

// A trained tiny run (4 epochs with EMA weights: last.ckpt and epoch_0002..4.ckpt), shared by
// every case, and a config file whose data section has other normalization statistics.
class TrainedRun {
 public:
  TrainedRun() {
    const auto trained = run_vit("train --config " + tiny_config(dir_) + " --output " + (dir_ / "run").string());
    EXPECT_EQ(trained.exit_code, 0) << trained.err;
    write_file(dir_ / "other_stats.yaml", "data:\n  train: {source: imagefolder, path: " + (dir_ / "train").string() +
                                              "}\n  val: {source: imagefolder, path: " + (dir_ / "train").string() +
                                              "}\n  mean: [0.3]\n  std: [0.5]\n");
  }

  // Replaces {run}, {image}, {image1}, {other_stats} and {out} (this side's output path).
  std::string expand(std::string arguments, const fs::path& out) const {
    const std::map<std::string, std::string> values = {{"{run}", (dir_ / "run").string()},
                                                       {"{image}", (dir_ / "val" / "left" / "0.png").string()},
                                                       {"{image1}", (dir_ / "val" / "right" / "1.png").string()},
                                                       {"{other_stats}", (dir_ / "other_stats.yaml").string()},
                                                       {"{out}", out.string()}};
    for (const auto& [placeholder, value] : values) {
      for (auto at = arguments.find(placeholder); at != std::string::npos; at = arguments.find(placeholder)) {
        arguments.replace(at, placeholder.size(), value);
      }
    }
    return arguments;
  }

  fs::path out(const std::string& name) const { return dir_ / name; }
  fs::path image() const { return dir_ / "val" / "left" / "0.png"; }

 private:
  TempDir dir_;
};

std::string observed(const TrainedRun& run, const FlagCase& flag, const fs::path& out, const CommandResult& result) {
  switch (flag.observe) {
    case FlagEffect::Stdout:
      return std::to_string(result.exit_code) + "\n" + result.out;
    case FlagEffect::StderrLines:
      return std::to_string(count_lines(result.err));
    case FlagEffect::ThreadLine: {
      std::istringstream lines(result.err);
      for (std::string line; std::getline(lines, line);) {
        if (line.find(" threads (") != std::string::npos) return line.substr(line.find(' '));
      }
      return "(no thread line)";
    }
    case FlagEffect::FileAtOut: {
      const fs::path file = out.string() + flag.suffix;
      return fs::exists(file) ? read_file(file) : "(none)";
    }
    case FlagEffect::ExportedLogits:
      return run_vit("predict --json --model " + out.string() + ".pt " + run.image().string()).out;
    case FlagEffect::NotHere:
      break;
  }
  return "";
}

void check_flags(const std::string& command, const std::vector<FlagCase>& cases) {
  const TrainedRun run;
  std::set<std::string> covered;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& flag = cases[i];
    SCOPED_TRACE(command + " " + flag.option);
    covered.insert(flag.option);
    EXPECT_TRUE(flag.observe == FlagEffect::Stdout || !flag.why.empty()) << "say why stdout does not show it";
    if (flag.observe == FlagEffect::NotHere) continue;
    const auto out_without = run.out("case" + std::to_string(i) + "a");
    const auto out_with = run.out("case" + std::to_string(i) + "b");
    const auto without = run_vit(command + " " + run.expand(flag.without, out_without));
    const auto with = run_vit(command + " " + run.expand(flag.with, out_with));
    ASSERT_EQ(without.exit_code, 0) << without.err;
    ASSERT_EQ(with.exit_code, 0) << with.err;
    EXPECT_NE(observed(run, flag, out_without, without), observed(run, flag, out_with, with))
        << "the option changed nothing it is for";
  }
  EXPECT_EQ(covered, documented_options(command)) << "every documented option needs a case, and only those";
}

const char* const kNoGpu = "on a machine without a GPU, auto already is the CPU";

TEST(CommandFlags, EveryEvalOptionChangesItsOutput) {
  const std::string base = "--checkpoint {run}/last.ckpt --output {out}";
  check_flags("eval",
              {
                  {"--help", base, base + " --help"},
                  {"--config", base, base + " --config {other_stats}"},  // other images and statistics
                  {"--set", base, base + " --set data.mean=[0.3]"},
                  {"--device", base, base + " --device cpu", FlagEffect::NotHere, "", kNoGpu},
                  {"--threads", base + " --threads 1", base + " --threads 2", FlagEffect::ThreadLine, "", "speed only"},
                  {"--verbose", base, base + " -v", FlagEffect::StderrLines, "", "debug lines on stderr"},
                  {"--checkpoint", base, "--checkpoint {run}/epoch_0002.ckpt --output {out}"},
                  {"--output", "--checkpoint {run}/last.ckpt", base, FlagEffect::FileAtOut, "/confusion.csv",
                   "where confusion.csv/png go"},
                  {"--json", base, base + " --json {out}.json", FlagEffect::FileAtOut, ".json", "the report file"},
                  {"--ema", base, base + " --ema"},
              });
}

TEST(CommandFlags, EveryPredictOptionChangesItsOutput) {
  const std::string base = "--model {run}/last.ckpt --json {image}";
  check_flags("predict", {
                             {"--help", base, base + " --help"},
                             {"--config", base, base + " --config {other_stats}"},  // other preprocessing statistics
                             {"--set", base, base + " --set data.mean=[0.3]"},
                             {"--device", base, base + " --device cpu", FlagEffect::NotHere, "", kNoGpu},
                             {"--threads", base + " -v --threads 1", base + " -v --threads 2", FlagEffect::ThreadLine,
                              "", "speed only"},
                             {"--verbose", base, base + " -v", FlagEffect::StderrLines, "", "debug lines on stderr"},
                             {"--model", base, "--model {run}/epoch_0002.ckpt --json {image}"},
                             {"inputs", base, "--model {run}/last.ckpt --json {image1}"},
                             {"--topk", base, base + " --topk 1"},
                             {"--json", "--model {run}/last.ckpt {image}", base},
                             {"--ema", base, base + " --ema"},
                             {"--attention-map", base, base + " --attention-map {out}.png", FlagEffect::FileAtOut,
                              ".png", "the heatmap file"},
                             {"--score-threshold", base, base + " --score-threshold 0.9", FlagEffect::NotHere, "",
                              "detectors only: Detection.ExportReturnsLogitsAndBoxesForAnyBatchSize"},
                             {"--overlay", base, base + " --overlay {out}", FlagEffect::NotHere, "",
                              "detectors only: Detection.ExportReturnsLogitsAndBoxesForAnyBatchSize"},
                         });
}

TEST(CommandFlags, EveryExportOptionChangesItsOutput) {
  const std::string base = "--checkpoint {run}/last.ckpt --output {out}.pt";
  const char* const logits = "the exported module's logits";
  check_flags("export",
              {
                  {"--help", base, base + " --help"},
                  {"--config", base, base + " --config {other_stats}", FlagEffect::ExportedLogits, "", logits},
                  {"--set", base, base + " --set data.mean=[0.3]", FlagEffect::ExportedLogits, "", logits},
                  {"--verbose", base, base + " -v", FlagEffect::StderrLines, "", "debug lines on stderr"},
                  {"--checkpoint", base, "--checkpoint {run}/epoch_0002.ckpt --output {out}.pt",
                   FlagEffect::ExportedLogits, "", logits},
                  {"--output", base, "--checkpoint {run}/last.ckpt --output {out}.elsewhere.pt", FlagEffect::FileAtOut,
                   ".pt", "where the file goes"},
                  {"--ema", base, base + " --ema", FlagEffect::ExportedLogits, "", logits},
                  {"--format", base, base + " --format safetensors", FlagEffect::FileAtOut, ".pt",
                   "the format of the file (ExportFormats tests read each one back)"},
              });
}

}  // namespace
}  // namespace vit::testing
