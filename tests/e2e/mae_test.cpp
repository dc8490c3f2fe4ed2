// MAE (model.arch mae): the masked autoencoder's loss and reconstructions against the plain
// PyTorch reference of scripts/bench/mae_reference.py with the same weights and noise; masks drawn
// from (seed, epoch, index); pretraining on unlabeled folders and lists with exact resume and
// reconstruction.png; `vit mae-show`, `vit bench`; fine-tuning a ViT from the encoder with layer
// decay; official-layout MAE encoders and timm's avg-pool ViTs imported to the reference outputs.
#include "app/io/checkpoint.h"
#include "app/io/weight_files.h"
#include "app/train/optimization.h"
#include "data/csv_list.h"
#include "data/errors.h"
#include "data/mask_noise.h"
#include "models/core/registry.h"
#include "models/mae/mae_options.h"
#include "support/python_reference.h"
#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <sstream>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

models::MaeOptions reference_options(int64_t in_chans, bool norm_pix_loss) {
  models::MaeOptions options;
  options.encoder = small_vit(16, 4, in_chans, 0, 32, 2, 2);
  options.encoder.mlp_ratio = 2.0;
  options.encoder.pos_embed = models::PosEmbedKind::SinCos2d;
  options.decoder_dim = 16;
  options.decoder_depth = 1;
  options.decoder_heads = 2;
  options.norm_pix_loss = norm_pix_loss;
  return options;
}

// Every parameter and buffer of `model` from `weights`, by name.
void copy_weights(models::ImageModel& model, const app::NamedTensors& weights) {
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) item.value().copy_(weights.at(item.key()));
  for (auto& item : model->named_buffers()) item.value().copy_(weights.at(item.key()));
}

double max_error(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat32) - b.to(torch::kFloat32)).abs().max().item<double>();
}

class MaskedAutoencoder : public PythonReferenceTest<MaskedAutoencoder> {
 public:
  static constexpr const char* kScript = "tests/e2e/mae/make_mae_reference.py";
};

TEST_F(MaskedAutoencoder, LossAndReconstructionEqualThePyTorchReference) {
  for (const auto& [name, in_chans, norm_pix_loss] :
       {std::tuple<std::string, int64_t, bool>{"grey", 1, false}, {"rgb", 3, true}}) {
    SCOPED_TRACE(name);
    auto model =
        models::build_model(models::ModelOptions(models::kMaeArch, reference_options(in_chans, norm_pix_loss)));
    const auto weights = app::read_torch_pickle(file("mae_" + name + ".pt"));
    const auto io = app::read_torch_pickle(file("mae_" + name + "_io.pt"));
    int64_t parameters = 0;
    for (const auto& parameter : model->parameters()) parameters += parameter.numel();
    EXPECT_EQ(parameters, io.at("parameters").item<int64_t>());
    copy_weights(model, weights);
    model->eval();
    auto* masked = models::masked_image_model(model);
    ASSERT_NE(masked, nullptr);
    torch::NoGradGuard no_grad;
    const auto loss = masked->reconstruction_loss(io.at("images"), io.at("noise"));
    EXPECT_NEAR(loss.item<double>(), io.at("loss").item<double>(), 1e-5);
    const auto made = masked->reconstruct(io.at("images"), io.at("noise"));
    EXPECT_LE(max_error(made.masked, io.at("masked")), 1e-5);
    EXPECT_LE(max_error(made.reconstructed, io.at("reconstructed")), 1e-4);
    // forward(): the encoder's class-token features of whole images.
    EXPECT_LE(max_error(model(io.at("images")), io.at("features")), 1e-4);
  }
}

TEST_F(MaskedAutoencoder, MasksHideTheHighestNoiseAndFollowSeedEpochAndIndex) {
  auto model = models::build_model(models::ModelOptions(models::kMaeArch, reference_options(1, false)));
  auto* masked = models::masked_image_model(model);
  ASSERT_EQ(masked->mask_noise_size(), 16);
  const auto indices = torch::tensor({3, 7, 3}, torch::kInt64);
  const auto noise = data::mask_noise(indices, 5, 2, 16);
  EXPECT_TRUE(noise[0].equal(noise[2]));  // the same sample, the same draws
  EXPECT_FALSE(noise[0].equal(noise[1]));
  EXPECT_FALSE(noise.equal(data::mask_noise(indices, 5, 3, 16)));  // another epoch
  EXPECT_FALSE(noise.equal(data::mask_noise(indices, 6, 2, 16)));  // another seed
  EXPECT_GE(noise.min().item<double>(), 0.0);
  EXPECT_LT(noise.max().item<double>(), 1.0);

  // 16 patches at mask_ratio 0.75: the 4 of lowest noise stay, the rest read 0 in `masked`.
  const auto images = torch::rand({3, 1, 16, 16}) + 1.0;
  const auto made = masked->reconstruct(images, noise);
  const auto visible = made.masked.reshape({3, 4, 4, 4, 4}).permute({0, 1, 3, 2, 4}).reshape({3, 16, 16}).ne(0).all(2);
  const auto lowest = std::get<1>(noise.topk(4, 1, /*largest=*/false));
  for (int64_t i = 0; i < 3; ++i) {
    EXPECT_EQ(visible[i].sum().item<int64_t>(), 4);
    for (int64_t k = 0; k < 4; ++k) EXPECT_TRUE(visible[i][lowest[i][k]].item<bool>());
  }
}

TEST_F(MaskedAutoencoder, OfficialEncoderWeightsAndAvgPoolVitsImportToTheReferenceOutputs) {
  torch::NoGradGuard no_grad;
  const auto encoder = run_vit("import --from timm " + file("mae_pretrain_timm.pth").string() + " --heads 2 --output " +
                               file("encoder.ckpt").string());
  ASSERT_EQ(encoder.exit_code, 0) << encoder.err;
  EXPECT_NE(encoder.err.find("MAE decoder dropped"), std::string::npos) << encoder.err;
  const auto rgb = app::read_torch_pickle(file("mae_rgb_io.pt"));
  auto encoder_model = load_checkpoint_model(file("encoder.ckpt"));
  EXPECT_LE(max_error(encoder_model(rgb.at("images")), rgb.at("features")), 1e-4);

  const auto avg = run_vit("import --from timm " + file("vit_avg_timm.pth").string() + " --heads 2 --output " +
                           file("avg.ckpt").string());
  ASSERT_EQ(avg.exit_code, 0) << avg.err;
  EXPECT_NE(avg.err.find("pool avg"), std::string::npos) << avg.err;
  const auto io = app::read_torch_pickle(file("vit_avg_io.pt"));
  auto avg_model = load_checkpoint_model(file("avg.ckpt"));
  EXPECT_LE(max_error(avg_model(io.at("images")), io.at("logits")), 1e-4);
}

TEST(UnlabeledLists, PathsAloneAreUnlabeledAndMixingIsRefusedByLine) {
  std::istringstream alone("path\nimages/a.png\n\"b,c.png\"\n");
  const auto list = data::parse_csv_list(alone, "list.csv", "/data", {});
  ASSERT_EQ(list.entries.size(), 2u);
  EXPECT_EQ(list.entries[1].path, fs::path("/data/b,c.png"));
  EXPECT_EQ(list.entries[0].label, data::kNoLabel);
  EXPECT_TRUE(list.class_names.empty());
  std::istringstream mixed("a.png\nb.png,1\n");
  try {
    data::parse_csv_list(mixed, "list.csv", "/data", {});
    FAIL() << "a labelled line in an unlabeled list was accepted";
  } catch (const data::DataError& error) {
    EXPECT_NE(std::string(error.what()).find("list.csv:2"), std::string::npos) << error.what();
  }
}

// Pretraining on the halves images without their labels, then fine-tuning a ViT on them with labels.
class MaePretraining : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    write_halves_dataset(*dir_ / "labelled", 32, 1);
    write_halves_dataset(*dir_ / "labelled_val", 8, 2);
    // The training images in one flat folder, the validation images as a list of paths.
    fs::create_directories(*dir_ / "flat");
    std::string list = "path\n";
    for (const auto& entry : fs::recursive_directory_iterator(*dir_ / "labelled")) {
      if (!entry.is_regular_file()) continue;
      fs::copy_file(
          entry.path(),
          *dir_ / "flat" / (entry.path().parent_path().filename().string() + "_" + entry.path().filename().string()));
    }
    for (const auto& entry : fs::recursive_directory_iterator(*dir_ / "labelled_val")) {
      if (entry.is_regular_file()) list += entry.path().string() + "\n";
    }
    write_file(*dir_ / "val.csv", list);
    write_file(*dir_ / "mae.yaml",
               "model: {arch: mae, image_size: 16, patch_size: 4, in_chans: 1, dim: 32, depth: 2, heads: 2,\n"
               "        mlp_ratio: 2.0, decoder_dim: 16, decoder_depth: 1, decoder_heads: 2, norm_pix_loss: true}\n"
               "data:\n"
               "  train: {source: imagefolder, path: " +
                   (*dir_ / "flat").string() +
                   "}\n"
                   "  val: {source: csv, path: " +
                   (*dir_ / "val.csv").string() +
                   "}\n"
                   "  mean: [0.5]\n  std: [0.25]\n  workers: 2\n"
                   "train: {epochs: 3, batch_size: 16, lr: 3.0e-3, warmup_steps: 2, threads: 2, log_every: 1}\n");
    // A classifier of the encoder's size on the labelled images.
    write_file(*dir_ / "vit.yaml",
               "model: {image_size: 16, patch_size: 4, in_chans: 1, num_classes: 2, dim: 32, depth: 2, heads: 2,\n"
               "        mlp_ratio: 2.0, pool: avg}\n"
               "data:\n"
               "  train: {source: imagefolder, path: " +
                   (*dir_ / "labelled").string() +
                   "}\n"
                   "  val: {source: imagefolder, path: " +
                   (*dir_ / "labelled_val").string() +
                   "}\n"
                   "  mean: [0.5]\n  std: [0.25]\n  workers: 2\n"
                   "train: {epochs: 1, batch_size: 16, lr: 3.0e-3, warmup_steps: 2, threads: 2, layer_decay: 0.65}\n");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static fs::path path(const std::string& name) { return *dir_ / name; }
  static std::string config() { return path("mae.yaml").string(); }

 private:
  static TempDir* dir_;
};
TempDir* MaePretraining::dir_ = nullptr;

TEST_F(MaePretraining, LearnsFromUnlabeledImagesResumesExactlyAndDrawsReconstructions) {
  const auto straight = run_vit("train --config " + config() + " --output " + path("straight").string());
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  EXPECT_NE(straight.err.find("val reconstruction loss"), std::string::npos) << straight.err;
  // 64 images in batches of 16, 3 epochs: 12 steps; the loss falls.
  const auto losses = loss_column(path("straight") / "steps.csv");
  ASSERT_EQ(losses.size(), 12u);
  const auto value = [](const std::string& step_loss) { return std::stod(step_loss.substr(step_loss.find(':') + 1)); };
  EXPECT_LT(value(losses.back()), value(losses.front()));
  EXPECT_NE(read_file(path("straight") / "metrics.csv").find("val_loss"), std::string::npos);
  // Original | masked | reconstruction of 8 validation images, 16 px shown at 96.
  const auto picture = cv::imread((path("straight") / "reconstruction.png").string());
  ASSERT_FALSE(picture.empty());
  EXPECT_EQ(picture.cols, 3 * 96 + 2 * 4);
  EXPECT_EQ(picture.rows, 8 * 96 + 7 * 4);

  // Stopped after 5 steps (inside epoch 2) and resumed: the same losses, step for step.
  const auto first =
      run_vit("train --config " + config() + " --output " + path("resumed").string() + " --stop-after 5");
  ASSERT_EQ(first.exit_code, 0) << first.err;
  const auto second = run_vit("train --resume " + path("resumed").string());
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_EQ(loss_column(path("resumed") / "steps.csv"), losses);

  // bf16, accumulation and an EMA of the weights run the same objective.
  const auto bf16 = run_vit("train --config " + config() + " --output " + path("bf16").string() +
                            " --set train.amp=bf16 --set train.grad_accum_steps=2 --set train.epochs=1" +
                            " --set train.ema_decay=0.9");
  ASSERT_EQ(bf16.exit_code, 0) << bf16.err;
  EXPECT_TRUE(app::CheckpointReader(path("bf16") / "last.ckpt").has_ema());

  // mae-show: one row per image.
  std::vector<std::string> images;
  for (const auto& entry : fs::directory_iterator(path("flat"))) {
    if (images.size() < 2) images.push_back(entry.path().string());
  }
  const auto shown = run_vit("mae-show --checkpoint " + path("straight").string() + " " + images[0] + " " + images[1] +
                             " --output " + path("show.png").string());
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(cv::imread(path("show.png").string()).rows, 2 * 96 + 4);
  // Half the patches hidden instead of three quarters: more of each image shows.
  const auto half = run_vit("mae-show --checkpoint " + path("straight").string() + " " + images[0] +
                            " --set model.mask_ratio=0.5 --output " + path("half.png").string());
  ASSERT_EQ(half.exit_code, 0) << half.err;
  const auto quarter = run_vit("mae-show --checkpoint " + path("straight").string() + " " + images[0] + " --output " +
                               path("quarter.png").string());
  ASSERT_EQ(quarter.exit_code, 0) << quarter.err;
  const auto hidden_share = [&](const std::string& name) {
    const auto grid = cv::imread(path(name).string(), cv::IMREAD_GRAYSCALE);
    const cv::Mat masked = grid(cv::Rect(96 + 4, 0, 96, 96));
    const cv::Mat original = grid(cv::Rect(0, 0, 96, 96));
    cv::Mat differs;
    cv::compare(masked, original, differs, cv::CMP_NE);
    return static_cast<double>(cv::countNonZero(differs)) / (96.0 * 96.0);
  };
  EXPECT_LT(hidden_share("half.png"), hidden_share("quarter.png"));
  // --mask-seed draws other masks; --ema shows the EMA weights' reconstructions.
  const auto picture_of = [&](const std::string& run, const std::string& flags, const std::string& name) {
    const auto result = run_vit("mae-show --checkpoint " + path(run).string() + " " + images[0] + " " + flags +
                                " --output " + path(name).string());
    EXPECT_EQ(result.exit_code, 0) << result.err;
    return cv::imread(path(name).string());
  };
  const auto differ = [](const cv::Mat& a, const cv::Mat& b) { return cv::norm(a, b, cv::NORM_L1) > 0.0; };
  EXPECT_TRUE(differ(picture_of("straight", "--mask-seed 1", "seed1.png"), cv::imread(path("quarter.png").string())));
  EXPECT_TRUE(differ(picture_of("bf16", "--ema", "ema.png"), picture_of("bf16", "", "raw.png")));

  // Evaluation needs a classifier; the benchmark runs the pretraining step.
  const auto eval = run_vit("eval --checkpoint " + path("straight").string());
  EXPECT_EQ(eval.exit_code, 2);
  EXPECT_NE(eval.err.find("pretrains an encoder"), std::string::npos) << eval.err;
  const auto bench = run_vit("bench --config " + config() + " --warmup 1 --steps 1 --repeats 1 --json");
  EXPECT_EQ(bench.exit_code, 0) << bench.err;
}

TEST_F(MaePretraining, AClassifierFineTunesFromTheEncoderWithLayerDecay) {
  const auto pretrained =
      run_vit("train --config " + config() + " --output " + path("encoder").string() + " --set train.epochs=1");
  ASSERT_EQ(pretrained.exit_code, 0) << pretrained.err;
  const auto classifier = path("vit.yaml").string();
  // A classifier cannot learn from unlabeled images.
  const auto unlabeled = run_vit("train --config " + classifier + " --output " + path("refused").string() +
                                 " --set data.train.path=" + path("flat").string());
  EXPECT_EQ(unlabeled.exit_code, 2);
  EXPECT_NE(unlabeled.err.find("data.train"), std::string::npos) << unlabeled.err;
  EXPECT_NE(unlabeled.err.find("without labels"), std::string::npos) << unlabeled.err;

  const auto tuned = run_vit("train --config " + classifier + " --output " + path("tuned").string() +
                             " --set model.pretrained=" + (path("encoder") / "last.ckpt").string());
  ASSERT_EQ(tuned.exit_code, 0) << tuned.err;
  EXPECT_NE(tuned.err.find("a mae model) shares with this vit"), std::string::npos) << tuned.err;

  // What the classifier takes: every encoder tensor but the final norm (pool avg has fc_norm
  // instead); what it keeps of its own: fc_norm and the head; the decoder stays behind.
  app::CheckpointReader reader(path("encoder") / "last.ckpt");
  auto vit = models::build_model(app::load_config(classifier, {}).model.options);
  const auto shared = reader.load_shared_weights(vit);
  EXPECT_EQ(shared.kept, (std::vector<std::string>{"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}));
  for (const auto& name : shared.unused) {
    EXPECT_TRUE(name.rfind("decoder_", 0) == 0 || name == "mask_token" || name.rfind("norm.", 0) == 0) << name;
  }
  EXPECT_NE(std::find(shared.copied.begin(), shared.copied.end(), "blocks.1.mlp.fc2.weight"), shared.copied.end());

  // Layer decay 0.5 over 2 blocks: embeddings x0.125, block 0 x0.25, block 1 x0.5, head x1.
  app::TrainConfig train;
  train.layer_decay = 0.5;
  EXPECT_EQ(app::group_lr_scales(vit, train), (std::vector<double>{0.125, 0.125, 0.25, 0.25, 0.5, 0.5, 1, 1}));
  train.backbone_lr_scale = 0.1;  // the final norm is backbone, the head is not
  EXPECT_EQ(app::group_lr_scales(vit, train).back(), 1.0);
  auto optimizer = app::make_optimizer(vit, train);
  app::set_learning_rate(*optimizer, 2.0, app::group_lr_scales(vit, train));
  EXPECT_DOUBLE_EQ(optimizer->param_groups().front().options().get_lr(), 2.0 * 0.1 * 0.125);
  // Without scales: the two groups of earlier releases.
  const app::TrainConfig unscaled;
  EXPECT_EQ(app::group_lr_scales(vit, unscaled).size(), 2u);
}

}  // namespace
}  // namespace vit::testing
