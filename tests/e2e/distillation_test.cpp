// train.distillation (DeiT): what the teacher's predictions do to the student, hard and soft,
// with a TorchScript teacher exported from Python and with a vitcpp checkpoint; exact resume with
// the same teacher and refusal of another; teachers that do not fit refused before training; a
// distilled student's export checked in Python, its prediction and its attention maps.
#include "app/commands/image_inputs.h"
#include "app/io/trained_model.h"
#include "data/transforms.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <sstream>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

class Distillation : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    config_ = tiny_config(*dir_);
    const auto command = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) +
                         "/tests/e2e/distillation/make_teachers.py " + dir_->path().string();
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path path(const std::string& name) { return *dir_ / name; }
  // `vit train` on the halves images (2 classes, 16 per class in validation) into `run`.
  static CommandResult train(const std::string& run, const std::string& settings) {
    return run_vit("train --config " + config_ + " --output " + path(run).string() +
                   " --set train.label_smoothing=0 --set model.dropout=0 --set model.drop_path=0 " + settings);
  }
  // The last validation top-1 of a run, from its metrics.csv.
  static double final_top1(const std::string& run) {
    std::istringstream lines(read_file(path(run) / "metrics.csv"));
    std::string line;
    std::string last;
    while (std::getline(lines, line)) last = line;
    std::vector<std::string> cells;
    std::istringstream fields(last);
    for (std::string cell; std::getline(fields, cell, ',');) cells.push_back(cell);
    return std::stod(cells.at(4));
  }
  static std::string teacher(const std::string& name) {
    return " --set train.distillation.teacher=" + path(name).string();
  }
  // The model's mean logits over the validation images.
  static torch::Tensor mean_validation_logits(const fs::path& checkpoint) {
    auto trained = app::load_trained_model(checkpoint, app::CommonOptions{}, false, torch::Device(torch::kCPU));
    const data::Transform transform(trained.config.data.val_transforms, 16, 1);
    std::vector<torch::Tensor> images;
    for (const auto& file : app::expand_image_inputs({path("val").string()})) {
      images.push_back(app::prepare_image(file, transform).input);
    }
    torch::NoGradGuard no_grad;
    return trained.model(torch::cat(images)).mean(0);
  }

  static TempDir* dir_;
  static std::string config_;
};
TempDir* Distillation::dir_ = nullptr;
std::string Distillation::config_;

TEST_F(Distillation, WithAlphaOneTheStudentLearnsTheTeachersHardLabelsNotTheTrueOnes) {
  // The constant teacher calls every image class 0: its argmax is all the student is told.
  const auto run =
      train("hard", teacher("constant.pt") + " --set train.distillation.type=hard --set train.distillation.alpha=1.0");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.err.find("distillation (hard, alpha 1, tau 1) from the teacher TorchScript module"), std::string::npos)
      << run.err;
  EXPECT_NE(run.err.find("top-1 50.00%"), std::string::npos) << run.err;  // class 0 for all 32 images
  const auto logits = mean_validation_logits(path("hard") / "last.ckpt");
  EXPECT_GT((logits[0] - logits[1]).item<double>(), 2.0);

  // The same run without a teacher learns the true classes.
  const auto plain = train("plain", "--set train.epochs=12");
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_GE(final_top1("plain"), 0.9) << plain.err;
}

TEST_F(Distillation, AlphaZeroLeavesEveryLossAsWithoutATeacher) {
  const auto with_teacher =
      train("alpha0", teacher("cnn.pt") + " --set train.distillation.type=soft --set train.distillation.alpha=0");
  ASSERT_EQ(with_teacher.exit_code, 0) << with_teacher.err;
  const auto without = train("no_teacher", "");
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(loss_column(path("alpha0") / "steps.csv"), loss_column(path("no_teacher") / "steps.csv"));
}

TEST_F(Distillation, TheTeacherRunsInEvalMode) {
  // A teacher saved in training mode with dropout after its logits: in eval mode the dropout is
  // the identity, so every loss equals the one with the plain constant teacher.
  const std::string settings = " --set train.distillation.type=soft --set train.distillation.tau=2";
  const auto plain = train("constant_soft", teacher("constant.pt") + settings);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  const auto with_dropout = train("dropout_soft", teacher("dropout.pt") + settings);
  ASSERT_EQ(with_dropout.exit_code, 0) << with_dropout.err;
  EXPECT_EQ(loss_column(path("dropout_soft") / "steps.csv"), loss_column(path("constant_soft") / "steps.csv"));
}

TEST_F(Distillation, SoftDistillationMatchesTheTeachersDistribution) {
  // KL to softmax([2, 0] / tau) at tau 2 is smallest where the student's logits differ by 2 too.
  const auto run = train("soft", teacher("constant.pt") +
                                     " --set train.distillation.type=soft --set train.distillation.alpha=1.0"
                                     " --set train.distillation.tau=2 --set train.epochs=8");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const auto logits = mean_validation_logits(path("soft") / "last.ckpt");
  EXPECT_NEAR((logits[0] - logits[1]).item<double>(), 2.0, 0.3);
}

TEST_F(Distillation, ADistilledStudentResumesExactlyWithItsTeacherAndRefusesAnother) {
  const std::string settings = teacher("cnn.pt") +
                               " --set train.distillation.type=hard --set model.distilled=true"
                               " --set train.mixup.mixup_alpha=0.8 --set train.grad_accum_steps=2 --set train.epochs=2";
  const auto straight = train("straight", settings);
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  const auto interrupted = train("interrupted", settings + " --stop-after 3");
  ASSERT_EQ(interrupted.exit_code, 0) << interrupted.err;

  // Another file under the teacher's name: refused, the checkpoint left as it was.
  fs::copy_file(path("cnn.pt"), path("cnn_original.pt"));
  fs::copy_file(path("cnn_retrained.pt"), path("cnn.pt"), fs::copy_options::overwrite_existing);
  const auto refused = run_vit("train --resume " + path("interrupted").string());
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("--resume: the teacher " + path("cnn.pt").string() +
                             " is not the file the run began with (crc32 "),
            std::string::npos)
      << refused.err;
  fs::copy_file(path("cnn_original.pt"), path("cnn.pt"), fs::copy_options::overwrite_existing);
  const auto resumed = run_vit("train --resume " + path("interrupted").string());
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_EQ(loss_column(path("interrupted") / "steps.csv"), loss_column(path("straight") / "steps.csv"));
}

TEST_F(Distillation, TeachersThatDoNotFitAreRefusedBeforeTraining) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {teacher("three_classes.pt") + " --set train.distillation.type=hard",
       "three_classes.pt: gives [2, 3] for a batch of 2; the student needs [2, 2] (model.num_classes 2)"},
      {teacher("rgb.pt") + " --set train.distillation.type=hard",
       "rgb.pt: does not take the student's input [2, 1, 16, 16]"},
      {teacher("config.yaml") + " --set train.distillation.type=soft", "config.yaml: neither a vitcpp checkpoint (" +
                                                                           path("config.yaml").string() +
                                                                           ": not a readable vitcpp checkpoint"},
      {teacher("missing.pt") + " --set train.distillation.type=soft", "missing.pt: no such file"},
      {" --set train.distillation.type=hard", "train.distillation.teacher: distillation.type hard needs a teacher"},
      {teacher("cnn.pt"), "train.distillation.type: is none, so the teacher would not be used"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& [settings, message] = cases[i];
    const auto run_name = "refused" + std::to_string(i);
    const auto run = train(run_name, settings);
    EXPECT_EQ(run.exit_code, 2) << settings << "\n" << run.err;
    EXPECT_NE(run.err.find(message), std::string::npos) << settings << "\n" << run.err;
    EXPECT_FALSE(fs::exists(path(run_name) / "steps.csv")) << settings;
  }
}

TEST_F(Distillation, ACheckpointTeacherWithOtherNormalizationTeachesADistilledStudent) {
  // The teacher: the plain run of a student normalized with mean 0.5, std 0.25 (tiny_config's).
  const auto teacher_run = train("teacher", "--set train.epochs=12");
  ASSERT_EQ(teacher_run.exit_code, 0) << teacher_run.err;
  ASSERT_GE(final_top1("teacher"), 0.9) << teacher_run.err;
  // The student sees other normalized values; the teacher gets its own back, and only its labels.
  const auto student = train(
      "student", teacher("teacher") +
                     " --set train.distillation.type=hard --set train.distillation.alpha=1.0"
                     " --set model.distilled=true --set data.mean=[0.3] --set data.std=[0.5] --set train.epochs=12");
  ASSERT_EQ(student.exit_code, 0) << student.err;
  EXPECT_NE(student.err.find("inputs renormalized to its mean 0.5 and std 0.25"), std::string::npos) << student.err;
  EXPECT_GE(final_top1("student"), 0.9) << student.err;

  // The teacher's `vit export`: its config.json tells the normalization it expects.
  const auto teacher_export = path("teacher.pt");
  ASSERT_EQ(run_vit("export --checkpoint " + (path("teacher") / "last.ckpt").string() + " --output " +
                    teacher_export.string())
                .exit_code,
            0);
  const auto export_taught = train("export_taught", teacher("teacher.pt") +
                                                        " --set train.distillation.type=hard --set data.mean=[0.3]"
                                                        " --set data.std=[0.5] --set train.max_steps=2");
  ASSERT_EQ(export_taught.exit_code, 0) << export_taught.err;
  EXPECT_NE(export_taught.err.find("from the teacher TorchScript module " + teacher_export.string() +
                                   ", inputs renormalized to its mean 0.5 and std 0.25"),
            std::string::npos)
      << export_taught.err;

  // Export: TorchScript and a state_dict, checked in Python against the plain PyTorch DeiT
  // (the mean of its two heads), and the export predicts as the checkpoint does.
  const auto checkpoint = path("student") / "last.ckpt";
  for (const auto& [format, file] : std::vector<std::pair<std::string, std::string>>{
           {"torchscript", "deit.pt"}, {"safetensors", "deit.safetensors"}, {"pth", "deit.pth"}}) {
    const auto exported = run_vit("export --checkpoint " + checkpoint.string() + " --format " + format + " --output " +
                                  path(file).string());
    ASSERT_EQ(exported.exit_code, 0) << exported.err;
  }
  const auto report_file = path("exports.json");
  const auto command = app::python_interpreter() + " " + std::string(VIT_SOURCE_DIR) +
                       "/tests/e2e/exports/check_exports.py " + path("deit.pt").string() + " " +
                       path("deit.safetensors").string() + " " + path("deit.pth").string() + " > " +
                       report_file.string();
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  const auto report = nlohmann::json::parse(read_file(report_file));
  EXPECT_EQ(report["tensors"].get<int>(), 2 + 2 + 2 * 12 + 2 + 2 + 3);  // + dist_token, head_dist.*
  EXPECT_LE(report["max_logit_difference"].get<double>(), 1e-5);
  const auto image = (path("val") / "left" / "0.png").string();
  const auto from_export = run_vit("predict --model " + path("deit.pt").string() + " " + image);
  const auto from_checkpoint =
      run_vit("predict --model " + checkpoint.string() + " " + image + " --attention-map " + path("map.png").string());
  ASSERT_EQ(from_export.exit_code, 0) << from_export.err;
  ASSERT_EQ(from_checkpoint.exit_code, 0) << from_checkpoint.err;
  EXPECT_EQ(from_export.out, from_checkpoint.out.substr(0, from_checkpoint.out.find('\n') + 1));
  EXPECT_TRUE(fs::exists(path("map.png")));

  // vit attention: the class token's maps and the distillation token's.
  const auto attention = run_vit("attention --checkpoint " + checkpoint.string() + " " + image + " --output " +
                                 path("attention").string());
  ASSERT_EQ(attention.exit_code, 0) << attention.err;
  for (const std::string name :
       {"0_rollout.png", "0_heads_block1.png", "0_dist_rollout.png", "0_dist_heads_block1.png"}) {
    EXPECT_TRUE(fs::exists(path("attention") / name)) << name << "\n" << attention.out;
  }
}

}  // namespace
}  // namespace vit::testing
