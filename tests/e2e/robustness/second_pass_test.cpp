// What an adversarial afternoon found beyond the first bad-input suite, by kind: results that
// were wrong without a word, resources exhausted or hangs on bad input, lost work, and messages
// that did not help. Each case runs the real `vit` binary.
#include "app/config/config.h"
#include "app/io/checkpoint.h"
#include "models/core/registry.h"
#include "models/vit/vision_transformer.h"
#include "support/robustness_support.h"
#include "support/run_support.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <chrono>
#include <sstream>
#include <thread>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

std::string train_command(const TempDir& dir, const std::string& more = "") {
  return "train --config " + tiny_config(dir) + " " + more + " --output " + (dir / "run").string();
}

double json_number(const fs::path& file, const char* key) {
  return nlohmann::json::parse(read_file(file))[key].get<double>();
}

// --- Wrong results without a word -----------------------------------------------------------

// Validation classes are scored by the training split's indices, matched by name: a validation
// folder holding only "right" images is not numbered from 0.
TEST(WrongResults, ValidationClassesAreMatchedToTrainingClassesByName) {
  TempDir dir;
  write_halves_dataset(dir / "right_only", 16, 5);
  fs::remove_all(dir / "right_only" / "left");
  const auto trained = run_vit(train_command(dir,
                                             "--set train.epochs=10 --set model.dropout=0 --set model.drop_path=0 "
                                             "--set model.pos_embed=sincos --set data.val.path=" +
                                                 (dir / "right_only").string()));
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const auto evaluated =
      run_vit("eval --checkpoint " + (dir / "run").string() + " --json " + (dir / "eval.json").string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_GE(json_number(dir / "eval.json", "top1"), 0.9) << "right-only images scored as another class";
  EXPECT_EQ(nlohmann::json::parse(read_file(dir / "eval.json"))["per_class"].size(), 2u);  // the checkpoint's classes
}

TEST(WrongResults, AValidationClassTheTrainingDataLacksIsRefusedBeforeTraining) {
  TempDir dir;
  write_halves_dataset(dir / "other", 2, 5);
  fs::rename(dir / "other" / "left", dir / "other" / "up");
  const auto result = run_vit(train_command(dir, "--set data.val.path=" + (dir / "other").string()));
  expect_clean_failure(result, 1, {"data.val: classes the model was not trained on: up", "left, right"});
  EXPECT_FALSE(fs::exists(dir / "run" / "last.ckpt"));
}

class TrainedTinyRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    const auto trained = run_vit(train_command(*dir_, "--set train.epochs=1"));
    ASSERT_EQ(trained.exit_code, 0) << trained.err;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string checkpoint() { return (dir_->path() / "run" / "last.ckpt").string(); }
  static TempDir* dir_;
};
TempDir* TrainedTinyRun::dir_ = nullptr;

TEST_F(TrainedTinyRun, EvalAndExportRefuseArchitectureOverridesThatKeepTheShapes) {
  TempDir out;
  const auto before = snapshot(dir_->path() / "run");
  for (const auto* change : {"model.depth=1", "model.pool=mean", "model.pos_embed=none", "model.qkv_bias=false"}) {
    const std::string key = std::string(change).substr(0, std::string(change).find('='));
    expect_clean_failure(run_vit("eval --checkpoint " + checkpoint() + " --set " + change), 2,
                         {"--set", key, "last.ckpt", "cannot be changed"});
    expect_clean_failure(
        run_vit("export --checkpoint " + checkpoint() + " --output " + (out / "m.pt").string() + " --set " + change), 2,
        {key});
  }
  // What acts in training alone may differ.
  EXPECT_EQ(run_vit("eval --checkpoint " + checkpoint() + " --set model.dropout=0.3").exit_code, 0);
  expect_unchanged(before);
}

TEST_F(TrainedTinyRun, ACheckpointWhoseConfigDescribesAnotherModelDoesNotLoad) {
  // Weights of a depth-2 model under a config that says depth 1: the second block would be dropped.
  app::CheckpointReader reader(checkpoint());
  auto config = app::load_config_text(reader.config_yaml(), "checkpoint", {});
  auto model = models::build_model(config.model.options);
  reader.load_model(model, false);
  auto shallower = config;
  shallower.model.options.as<models::VitOptions>().depth = 1;
  TempDir dir;
  app::CheckpointContents contents;
  contents.model = &model;
  contents.config_yaml = app::emit_config(shallower);
  contents.class_names = reader.class_names();
  app::save_checkpoint(dir / "mismatched.ckpt", contents);
  expect_clean_failure(run_vit("eval --checkpoint " + (dir / "mismatched.ckpt").string()), 1,
                       {"mismatched.ckpt", "has no place for", "blocks.1."});
}

TEST_F(TrainedTinyRun, ResumeRefusesChangesThatMakeAnotherRun) {
  const auto before = snapshot(dir_->path() / "run");
  for (const auto* change : {"train.batch_size=8", "train.optimizer=sgd", "model.dim=48", "train.seed=3"}) {
    const std::string key = std::string(change).substr(0, std::string(change).find('='));
    expect_clean_failure(run_vit("train --resume " + checkpoint() + " --set " + change), 2, {"--resume: " + key});
  }
  expect_unchanged(before);
}

TEST(WrongResults, APresetWithOverriddenFieldsIsNotLoggedAsThePreset) {
  TempDir dir;
  const auto result = run_vit(
      train_command(dir, "--set model.preset=vit_micro_patch4_28 --set train.max_steps=1 --set train.epochs=1"));
  ASSERT_EQ(result.exit_code, 0) << result.err;
  const auto line = result.err.substr(result.err.find("info model "));
  EXPECT_EQ(line.rfind("info model custom (vit_micro_patch4_28 with ", 0), 0u) << result.err;
  EXPECT_NE(line.substr(0, line.find('\n')).find("image_size"), std::string::npos) << result.err;
}

// --- Resource exhaustion and hangs ------------------------------------------------------------

// dir/data.yaml: a tiny model and the given train and validation image folders.
void write_data_config(const TempDir& dir, const fs::path& train, const fs::path& val, int channels) {
  write_file(dir / "data.yaml", "model: {image_size: 16, patch_size: 4, in_chans: " + std::to_string(channels) +
                                    ", num_classes: 2, dim: 8, depth: 1, heads: 2}\ndata:\n  train: {source: "
                                    "imagefolder, path: " +
                                    train.string() + "}\n  val: {source: imagefolder, path: " + val.string() + "}\n");
}

CommandResult bench_validation_images(const TempDir& dir, const std::string& more = "") {
  return run_vit("data bench --config " + (dir / "data.yaml").string() +
                 " --split val --batch-size 1 --batches 10 --workers 1 " + more);
}

TEST(Resources, DirectoriesFifosAndDevicesAreNeverReadAsFiles) {
  TempDir dir;
  write_halves_dataset(dir / "train", 4, 1);
  ASSERT_EQ(::mkfifo((dir / "fifo").c_str(), 0600), 0);
  fs::create_directory(dir / "folder.png");
  const auto start = std::chrono::steady_clock::now();
  for (const auto& [target, kind] : std::vector<std::pair<fs::path, std::string>>{
           {dir / "fifo", "is a FIFO"}, {dir / "folder.png", "is a directory"}, {"/dev/zero", "is a device"}}) {
    // As an image (through a symlink in an ImageFolder), a config file and a weight file.
    TempDir case_dir;
    write_halves_dataset(case_dir / "val", 2, 3);
    fs::create_symlink(target, case_dir / "val" / "left" / "special.png");
    write_data_config(case_dir, dir / "train", case_dir / "val", 1);
    expect_clean_failure(bench_validation_images(case_dir), 1, {"special.png", kind});
    // Skipping bad samples skips it too.
    const auto skipped = bench_validation_images(case_dir, "--set data.on_bad_sample=skip");
    EXPECT_EQ(skipped.exit_code, 0) << skipped.err;
    if (kind != "is a directory") {
      expect_clean_failure(run_vit("info --config " + target.string()), 2, {target.string(), kind});
      expect_clean_failure(run_vit("import --from timm " + target.string() + " --output " + (case_dir / "x").string()),
                           1, {target.string(), kind});
    }
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(60)) << "something waited on the FIFO";
}

// A JPEG of noise (so that most of the file is entropy-coded data, past the headers).
std::string jpeg_bytes(int size) {
  cv::Mat noise(size, size, CV_8UC3);
  cv::randu(noise, 0, 255);
  std::vector<uint8_t> bytes;
  cv::imencode(".jpg", noise, bytes);
  return {bytes.begin(), bytes.end()};
}

// The same JPEG declaring 30000x30000 pixels in its start-of-frame header.
std::string declaring_30000_squared(std::string jpeg) {
  const auto sof = jpeg.find("\xFF\xC0");
  EXPECT_NE(sof, std::string::npos);
  for (const size_t at : {sof + 5, sof + 7}) {  // height, width
    jpeg[at] = static_cast<char>(30000 >> 8);
    jpeg[at + 1] = static_cast<char>(30000 & 0xFF);
  }
  return jpeg;
}

TEST(Resources, TheDecoderEnforcesMaxPixelsAndRefusesDamagedImages) {
  const auto whole = jpeg_bytes(128);
  const auto huge = declaring_30000_squared(whole);
  auto hidden = huge;
  hidden.insert(hidden.find("\xFF\xC0"), 1, '\x00');  // a stray byte hides the SOF from a strict header scan
  const std::vector<std::pair<std::string, std::pair<std::string, std::string>>> cases = {
      {"huge.jpg", {huge, "30000x30000 pixels, more than data.max_pixels"}},
      {"hidden.jpg", {hidden, "Corrupt JPEG data"}},
      {"truncated.jpg", {whole.substr(0, whole.size() * 2 / 3), "damaged JPEG"}},
      {"grey.png", {"P5\n30000 30000\n255\n" + std::string(64, '\x80'), "not a readable image"}},
  };
  for (const auto& [name, content] : cases) {
    TempDir dir;
    write_halves_dataset(dir / "val", 2, 3);
    write_halves_dataset(dir / "train", 2, 1);
    write_file(dir / "val" / "left" / name, content.first);
    write_data_config(dir, dir / "train", dir / "val", 3);
    expect_clean_failure(bench_validation_images(dir), 1, {name, content.second});
  }
}

// --- Lost work --------------------------------------------------------------------------------

TEST(LostWork, ASecondTrainingInTheSameRunDirectoryIsRefused) {
  TempDir dir;
  const auto first = spawn_vit(train_command(dir, "--set train.epochs=1000 --set train.log_every=1"), dir / "log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (count_lines(read_file(dir / "run" / "steps.csv")) < 2 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto second = run_vit("train --config " + (dir / "config.yaml").string() + " --output " +
                              (dir / "run").string() + " --overwrite");
  expect_clean_failure(second, 2, {"another vit train (pid " + std::to_string(first) + ")"});
  ::kill(first, SIGTERM);
  EXPECT_EQ(wait_exit_code(first), 128 + SIGTERM) << read_file(dir / "log");
  EXPECT_EQ(run_vit("eval --checkpoint " + (dir / "run").string()).exit_code, 0);
}

TEST(LostWork, LoggingIntoAClosedPipeDoesNotStopTraining) {
  TempDir dir;
  const auto command = std::string("bash -c '") + VIT_BINARY + " " + train_command(dir, "--set train.epochs=2") +
                       " 2>&1 | head -1 >/dev/null; echo ${PIPESTATUS[0]}'";
  FILE* pipe = ::popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  char status[16] = {};
  ASSERT_NE(std::fgets(status, sizeof(status), pipe), nullptr);
  ::pclose(pipe);
  EXPECT_EQ(std::string(status), "0\n");
  EXPECT_EQ(count_lines(read_file(dir / "run" / "metrics.csv")), 3u);
}

TEST_F(TrainedTinyRun, OutputsNeverOverwriteTheInputCheckpoint) {
  const auto before = snapshot(dir_->path() / "run");
  expect_clean_failure(run_vit("export --checkpoint " + checkpoint() + " --output " + checkpoint()), 2,
                       {"--output", "is the input"});
  expect_clean_failure(run_vit("eval --checkpoint " + (dir_->path() / "run").string() + " --json " + checkpoint()), 2,
                       {"--json", "is the input"});
  expect_unchanged(before);
}

TEST_F(TrainedTinyRun, AttentionGivesImagesOfTheSameNameTheirOwnFiles) {
  TempDir out;
  const auto result = run_vit("attention --checkpoint " + checkpoint() + " --output " + out.path().string() + " " +
                              (dir_->path() / "val" / "left" / "0.png").string() + " " +
                              (dir_->path() / "val" / "right" / "0.png").string());
  ASSERT_EQ(result.exit_code, 0) << result.err;
  for (const auto* name :
       {"left_0_rollout.png", "right_0_rollout.png", "left_0_heads_block1.png", "right_0_heads_block1.png"}) {
    EXPECT_TRUE(fs::exists(out / name)) << name << "\n" << result.out;
  }
}

// --- Messages that name the file, key or line --------------------------------------------------

TEST(Messages, InternalErrorsBecomeOneLineNamingTheCause) {
  TempDir dir;
  const auto config = tiny_config(dir);
  // A class-less model cannot be trained or benchmarked for training.
  expect_clean_failure(run_vit("train --config " + config + " --set model.num_classes=0"), 2,
                       {"model.num_classes: 0", "training needs the number of classes"});
  expect_clean_failure(run_vit("bench --set model.num_classes=0 --steps 1 --repeats 1 --warmup 0"), 2,
                       {"model.num_classes: 0"});
  // An extreme crop ratio range leaves a crop of at least one pixel.
  EXPECT_EQ(run_vit("train --config " + config +
                    " --set 'data.train_transforms.random_resized_crop={ratio: [100, 1000]}' --set train.max_steps=2"
                    " --output " +
                    (dir / "crop").string())
                .exit_code,
            0);
  // --set mistakes name the override, not the built-in config's first line.
  const auto bad_set = run_vit("train --set train.lr=abc");
  expect_clean_failure(bad_set, 2, {"--set train.lr=abc", "expected a number"});
  EXPECT_EQ(bad_set.err.find("built in"), std::string::npos) << bad_set.err;
  expect_clean_failure(run_vit("frobnicate"), 2, {"unknown command 'frobnicate'", "train"});
  expect_clean_failure(run_vit("trian"), 2, {"did you mean 'train'"});
  // Deeply nested YAML.
  write_file(dir / "deep.yaml", "model: " + std::string(5000, '[') + std::string(5000, ']') + "\n");
  expect_clean_failure(run_vit("info --config " + (dir / "deep.yaml").string()), 2, {"deep.yaml:1", "nested"});
}

TEST(Messages, ZeroSizedIdxImagesNameTheFile) {
  TempDir dir;
  const auto be32 = [](uint32_t value) {
    return std::string{static_cast<char>(value >> 24), static_cast<char>(value >> 16), static_cast<char>(value >> 8),
                       static_cast<char>(value)};
  };
  fs::create_directories(dir / "idx");
  write_file(dir / "idx" / "train-images-idx3-ubyte", be32(0x0803) + be32(2) + be32(0) + be32(0));
  write_file(dir / "idx" / "train-labels-idx1-ubyte", be32(0x0801) + be32(2) + std::string("\x01\x00", 2));
  expect_clean_failure(run_vit("data inspect --set data.train.path=" + (dir / "idx").string() +
                               " --set data.val.path=" + (dir / "idx").string() + " --set data.val.split=train"),
                       1, {"train-images-idx3-ubyte", "size 0"});
}

// A TorchScript file as `vit export` writes one, made by hand: torch.jit.script(`module`), after
// `definitions`, saved by Python's torch with `metadata` (a Python dict) as its config.json. Returns
// the exit status of that Python.
int save_scripted_module(const fs::path& file, const std::string& definitions, const std::string& module,
                         const std::string& metadata) {
  const auto script = file.parent_path() / "make.py";
  write_file(script, "import json, sys, torch\n" + definitions + "torch.jit.save(torch.jit.script(" + module +
                         "), sys.argv[1], _extra_files={'config.json': json.dumps(" + metadata + ")})\n");
  return std::system((app::python_interpreter() + " " + script.string() + " " + file.string()).c_str());
}

TEST(Messages, AFailingTorchScriptModuleIsOneLineNamingTheFile) {
  TempDir dir;
  write_halves_dataset(dir / "images", 1, 1);
  ASSERT_EQ(save_scripted_module(
                dir / "bad.pt",
                "class Bad(torch.nn.Module):\n"
                "    def forward(self, x):\n"
                "        return x.view(7, -1)\n",
                "Bad()", "{'image_size': 16, 'in_chans': 1, 'class_names': ['a'], 'mean': [0.5], 'std': [0.5]}"),
            0);
  expect_clean_failure(
      run_vit("predict --model " + (dir / "bad.pt").string() + " " + (dir / "images" / "left" / "0.png").string()), 1,
      {"bad.pt: the module fails on a [1, 1, 16, 16] input"});
}

// An image size of 1e30 in an export's metadata was cast to int64 unchecked (undefined behaviour).
TEST(Messages, ExportMetadataThatIsNotAWholeNumberIsRefusedNamingTheKey) {
  TempDir dir;
  write_halves_dataset(dir / "images", 1, 1);
  ASSERT_EQ(
      save_scripted_module(dir / "big.pt", "", "torch.nn.Flatten()",
                           "{'image_size': 1e30, 'in_chans': 1, 'class_names': ['a'], 'mean': [0.5], 'std': [0.5]}"),
      0);
  expect_clean_failure(
      run_vit("predict --model " + (dir / "big.pt").string() + " " + (dir / "images" / "left" / "0.png").string()), 1,
      {"big.pt: config.json metadata's \"image_size\" is not a whole number (1e+30)"});
}

TEST(Messages, ACsvListWithAByteOrderMarkReadsItsFirstPath) {
  TempDir dir;
  write_halves_dataset(dir / "val", 2, 3);
  write_halves_dataset(dir / "train", 4, 1);
  write_file(dir / "val" / "val.csv", "\xEF\xBB\xBFleft/0.png,left\nright/0.png,right\n");
  const auto result = run_vit(train_command(
      dir, "--set train.max_steps=1 --set 'data.val={source: csv, path: " + (dir / "val" / "val.csv").string() + "}'"));
  EXPECT_EQ(result.exit_code, 0) << result.err;
}

}  // namespace
}  // namespace vit::testing
