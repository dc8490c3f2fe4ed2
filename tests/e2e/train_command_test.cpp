#include "support/run_support.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>

#include <chrono>
#include <fstream>
#include <random>
#include <sstream>
#include <thread>

namespace vit::testing {
namespace {

namespace fs = std::filesystem;

// The suites named *OnDevice train and predict on VIT_TEST_DEVICE (CUDA on the GPU machine).
TEST(TrainOnDevice, EndToEndTrainEvalExportPythonPredict) {
  TempDir dir;
  const auto run = dir / "run";
  const auto device = test_device_flag();
  const auto trained = run_vit("train --config " + tiny_config(dir) + device + " --output " + run.string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  for (const auto* file : {"last.ckpt", "best.ckpt", "epoch_0004.ckpt", "config.yaml", "metrics.csv", "steps.csv",
                           "loss.png", "accuracy.png", "lr.png"}) {
    EXPECT_TRUE(fs::exists(run / file)) << file;
  }
  EXPECT_FALSE(fs::exists(run / "epoch_0001.ckpt"));  // keep_last 3
  const auto metrics = read_file(run / "metrics.csv");
  EXPECT_EQ(count_lines(metrics), 5u) << metrics;
  EXPECT_EQ(metrics.substr(0, metrics.find('\n')),
            "epoch,step,train_loss,val_loss,val_top1,val_top5,lr,images_per_s,seconds,ema_val_top1,val_map,val_ap50,"
            "ema_val_map");
  EXPECT_EQ(count_lines(read_file(run / "steps.csv")), 1u + 4u * 8u);

  // Evaluate: the same data and model give the numbers training logged for its last epoch.
  const auto evaluated = run_vit("eval --checkpoint " + (run / "last.ckpt").string() + device + " --json " +
                                 (dir / "eval.json").string() + " --output " + (dir / "eval").string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  const auto report = nlohmann::json::parse(read_file(dir / "eval.json"));
  EXPECT_EQ(report["samples"].get<int64_t>(), 32);
  EXPECT_GE(report["top1"].get<double>(), 0.0);
  EXPECT_LE(report["top1"].get<double>(), 1.0);
  EXPECT_EQ(report["confusion"].size(), 2u);
  EXPECT_TRUE(fs::exists(dir / "eval" / "confusion.png"));
  const auto ema_eval = run_vit("eval --checkpoint " + run.string() + " --ema --output " + (dir / "eval").string());
  EXPECT_EQ(ema_eval.exit_code, 0) << ema_eval.err;

  // Export, then compare logits: C++ TorchScript vs the checkpoint vs Python's torch.jit.load.
  const auto model = dir / "model.pt";
  const auto exported = run_vit("export --checkpoint " + (run / "best.ckpt").string() + " --output " + model.string());
  ASSERT_EQ(exported.exit_code, 0) << exported.err;
  const auto image = dir / "val" / "left" / "0.png";
  const auto from_script = run_vit("predict --json --model " + model.string() + device + " " + image.string());
  const auto from_checkpoint =
      run_vit("predict --json --model " + (run / "best.ckpt").string() + device + " " + image.string());
  ASSERT_EQ(from_script.exit_code, 0) << from_script.err;
  ASSERT_EQ(from_checkpoint.exit_code, 0) << from_checkpoint.err;
  const auto script_result = nlohmann::json::parse(from_script.out)[0];
  const auto checkpoint_result = nlohmann::json::parse(from_checkpoint.out)[0];
  const auto logits = script_result["logits"].get<std::vector<double>>();
  ASSERT_EQ(logits.size(), 2u);
  EXPECT_NEAR(logits[0], checkpoint_result["logits"][0].get<double>(), 1e-4);
  EXPECT_EQ(script_result["topk"][0]["class"].get<std::string>(),
            checkpoint_result["topk"][0]["class"].get<std::string>());

  // Python loads the file and, fed the same preprocessed pixels, gives the same logits.
  const auto python = nlohmann::json::parse(python_jit_predict(dir, model, image));
  EXPECT_NEAR(python["logits"][0].get<double>(), logits[0], 1e-4);
  EXPECT_NEAR(python["logits"][1].get<double>(), logits[1], 1e-4);
  EXPECT_EQ(python["classes"], nlohmann::json({"left", "right"}));
  EXPECT_EQ(python["keys"], nlohmann::json({"cls_token", "pos_embed", "patch_embed.proj.weight"}));

  const auto attention = run_vit("predict --model " + run.string() + " --attention-map " +
                                 (dir / "attention.png").string() + " " + image.string());
  EXPECT_EQ(attention.exit_code, 0) << attention.err;
  EXPECT_FALSE(cv::imread((dir / "attention.png").string()).empty());
}

TEST(Train, LearnsASimpleImageSetWithinSeconds) {
  TempDir dir;
  const auto start = std::chrono::steady_clock::now();
  const auto trained = run_vit("train --config " + tiny_config(dir) +
                               " --set model.pos_embed=sincos --set model.dropout=0 --set model.drop_path=0"
                               " --set train.epochs=10 --output " +
                               (dir / "run").string());
  ASSERT_EQ(trained.exit_code, 0) << trained.err;
  const auto evaluated =
      run_vit("eval --checkpoint " + (dir / "run").string() + " --json " + (dir / "eval.json").string());
  ASSERT_EQ(evaluated.exit_code, 0) << evaluated.err;
  EXPECT_GE(nlohmann::json::parse(read_file(dir / "eval.json"))["top1"].get<double>(), 0.95) << evaluated.out;
  std::cout << "trained and evaluated in "
            << std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() << " s\n";
}

// On CUDA the checkpoint carries the CUDA generator's state too.
TEST(TrainOnDevice, ResumedRunRepeatsTheUninterruptedLossesExactly) {
  TempDir dir;
  // A constant schedule (after a step-based warmup) lets the first run stop at an epoch's end
  // by being given fewer epochs.
  const auto config = tiny_config(dir) + test_device_flag() +
                      " --set train.grad_accum_steps=3 --set train.batch_size=8 --set train.schedule=constant" +
                      " --set data.train_transforms.random_crop_padding=1" +
                      " --set train.mixup.mixup_alpha=0.8 --set train.mixup.cutmix_alpha=1.0";
  const auto straight = dir / "straight";
  ASSERT_EQ(run_vit("train --config " + config + " --set train.epochs=3 --output " + straight.string()).exit_code, 0);

  // 16 batches of 8 make 5 steps of 3 per epoch with one micro-batch left over, whose gradient
  // must not leak into the next epoch. Stops: at the end of epoch 1, inside epoch 2, then the rest.
  const auto interrupted = dir / "interrupted";
  const auto first = run_vit("train --config " + config + " --set train.epochs=1 --output " + interrupted.string());
  ASSERT_EQ(first.exit_code, 0) << first.err;
  EXPECT_EQ(loss_column(interrupted / "steps.csv").size(), 5u);
  const auto second =
      run_vit("train --resume " + interrupted.string() + test_device_flag() + " --set train.epochs=3 --stop-after 2");
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.err.find("continue with: vit train --resume"), std::string::npos) << second.err;
  const auto third = run_vit("train --resume " + (interrupted / "last.ckpt").string() + test_device_flag());
  ASSERT_EQ(third.exit_code, 0) << third.err;

  const auto expected = loss_column(straight / "steps.csv");
  ASSERT_EQ(expected.size(), 15u);
  EXPECT_EQ(loss_column(interrupted / "steps.csv"), expected);
  EXPECT_EQ(count_lines(read_file(interrupted / "metrics.csv")), 4u);
  // On the CPU, down to the bytes: weights, EMA, optimizer states (stored by their parameter's
  // position, not by address), generator state. (best.ckpt, from epoch 1, holds the config of the
  // invocation that wrote it: train.epochs 1.)
  if (test_device().is_cpu()) {
    EXPECT_TRUE(read_file(interrupted / "last.ckpt") == read_file(straight / "last.ckpt"));
  }
}

TEST(Train, SignalsFinishTheStepSaveAndExitWith128PlusTheSignal) {
  for (const int signal : {SIGINT, SIGTERM, SIGHUP}) {
    TempDir dir;
    const auto run = dir / "run";
    const auto pid = spawn_vit(
        "train --config " + tiny_config(dir) + " --set train.epochs=1000 --output " + run.string(), dir / "log");
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (count_lines(read_file(run / "steps.csv")) < 3 && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid, signal);
    EXPECT_EQ(wait_exit_code(pid), 128 + signal) << read_file(dir / "log");
    const auto log = read_file(dir / "log");
    EXPECT_NE(log.find("stopping after the current step"), std::string::npos) << log;
    EXPECT_NE(log.find(signal == SIGINT    ? "interrupted after step"
                       : signal == SIGTERM ? "terminated after step"
                                           : "hung up after step"),
              std::string::npos)
        << log;
    const auto evaluated = run_vit("eval --checkpoint " + run.string());
    EXPECT_EQ(evaluated.exit_code, 0) << evaluated.err;
  }
}

TEST(Train, ASecondSignalStopsAtOnceLeavingTheLastCheckpointIntact) {
  TempDir dir;
  const auto run = dir / "run";
  // Steps of a few hundred milliseconds, so that the second signal lands inside one.
  const auto pid = spawn_vit("train --config " + tiny_config(dir) +
                                 " --set model.image_size=64 --set model.dim=192 --set model.depth=6"
                                 " --set train.epochs=100 --set train.log_every=1 --set train.checkpoint_every_steps=1"
                                 " --output " +
                                 run.string(),
                             dir / "log");
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (count_lines(read_file(run / "steps.csv")) < 3 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGINT);
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const auto second = std::chrono::steady_clock::now();
  ::kill(pid, SIGINT);
  EXPECT_EQ(wait_exit_code(pid), 130);
  EXPECT_LT(std::chrono::steady_clock::now() - second, std::chrono::seconds(2));
  const auto log = read_file(dir / "log");
  EXPECT_NE(log.find("second signal: stopped at once"), std::string::npos) << log;
  for (const auto& entry : fs::directory_iterator(run)) {
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path() << " left behind";
  }
  const auto evaluated = run_vit("eval --checkpoint " + run.string());
  EXPECT_EQ(evaluated.exit_code, 0) << evaluated.err;
}

TEST(Train, AnOutputHoldingARunIsContinuedOrOverwrittenOnlyWhenAsked) {
  TempDir dir;
  const auto config = tiny_config(dir) + " --set train.epochs=1";
  const auto run = dir / "run";
  ASSERT_EQ(run_vit("train --config " + config + " --output " + run.string()).exit_code, 0);
  const auto first_steps = loss_column(run / "steps.csv");

  const auto again = run_vit("train --config " + config + " --set train.seed=1 --output " + run.string());
  EXPECT_EQ(again.exit_code, 2);
  EXPECT_NE(again.err.find("already holds a run"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--resume"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--overwrite"), std::string::npos) << again.err;
  EXPECT_EQ(loss_column(run / "steps.csv"), first_steps);

  write_file(run / "notes.txt", "mine");
  const auto overwritten =
      run_vit("train --config " + config + " --set train.seed=1 --overwrite --output " + run.string());
  ASSERT_EQ(overwritten.exit_code, 0) << overwritten.err;
  EXPECT_EQ(loss_column(run / "steps.csv").size(), first_steps.size());
  EXPECT_NE(loss_column(run / "steps.csv"), first_steps);
  EXPECT_EQ(read_file(run / "notes.txt"), "mine");  // only the run's own files go

  // --resume auto, the same command line each time: continues where there is a checkpoint (and
  // its config must agree with the checkpoint's), starts where there is none.
  const auto continued = run_vit("train --config " + config + " --set train.seed=1 --set train.epochs=2 --output " +
                                 run.string() + " --resume auto");
  ASSERT_EQ(continued.exit_code, 0) << continued.err;
  EXPECT_NE(continued.err.find("resuming"), std::string::npos) << continued.err;
  EXPECT_EQ(loss_column(run / "steps.csv").size(), 2 * first_steps.size());
  const auto fresh = dir / "fresh";
  const auto started = run_vit("train --config " + config + " --output " + fresh.string() + " --resume auto");
  ASSERT_EQ(started.exit_code, 0) << started.err;
  EXPECT_EQ(started.err.find("resuming"), std::string::npos) << started.err;
  EXPECT_EQ(run_vit("train --resume auto").exit_code, 2);
  EXPECT_EQ(run_vit("train --resume " + run.string() + " --overwrite").exit_code, 2);
}

TEST(Train, AConfigWithoutAModelIsRefusedAndMemoryIsCheckedBeforeTheFirstStep) {
  TempDir dir;
  const auto config = tiny_config(dir);
  write_file(dir / "no_model.yaml", "data: {train: {source: imagefolder, path: " + (dir / "train").string() + "}}\n");
  const auto no_model =
      run_vit("train --config " + (dir / "no_model.yaml").string() + " --output " + (dir / "a").string());
  EXPECT_EQ(no_model.exit_code, 2);
  EXPECT_NE(no_model.err.find("no model section"), std::string::npos) << no_model.err;
  EXPECT_NE(no_model.err.find("vit_micro_patch4_28"), std::string::npos) << no_model.err;

  // ViT-B/16 at 224 px and batch 128 (what a config without a model section used to build) needs
  // more than 16 GiB: refused before the first step, naming the batch size.
  const auto big = run_vit("train --config " + config +
                               " --set model.preset=vit_base_patch16_224 --set model.image_size=224"
                               " --set model.patch_size=16 --set model.dim=768 --set model.depth=12"
                               " --set model.heads=12 --set model.mlp_ratio=4 --set train.batch_size=128 --output " +
                               (dir / "b").string(),
                           "VIT_AVAILABLE_MEMORY_MB=16384");
  EXPECT_EQ(big.exit_code, 2);
  EXPECT_NE(big.err.find("train.batch_size: 128"), std::string::npos) << big.err;
  EXPECT_NE(big.err.find("--force"), std::string::npos) << big.err;
  EXPECT_EQ(count_lines(big.err.substr(big.err.find("error:"))), 1u);

  const auto tight = "VIT_AVAILABLE_MEMORY_MB=1";
  EXPECT_EQ(run_vit("train --config " + config + " --output " + (dir / "c").string(), tight).exit_code, 2);
  const auto forced =
      run_vit("train --config " + config + " --set train.epochs=1 --force --output " + (dir / "d").string(), tight);
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
}

TEST(Train, WhereASlicePerThreadDoesNotFitTheBatchRunsInTheMostSlicesThatDo) {
  TempDir dir;
  const auto config = tiny_config(dir);
  // 1.1 M parameters: 4 MiB of gradients a slice; 16 images in 4 slices on 4 threads.
  const auto train = [&](const std::string& name, const std::string& extra, const std::string& environment) {
    return run_vit("train --config " + config +
                       " --set model.dim=256 --set train.epochs=1 --set train.threads=4 --output " +
                       (dir / name).string() + extra,
                   environment);
  };
  const auto ample = train("ample", "", "VIT_AVAILABLE_MEMORY_MB=16384");
  ASSERT_EQ(ample.exit_code, 0) << ample.err;
  EXPECT_NE(ample.err.find("runs as 4 slices, 1 thread each"), std::string::npos) << ample.err;
  const double four_slices = logged_memory_mib(ample.err, "batch slices' gradients");
  ASSERT_GT(four_slices, 12.0) << ample.err;

  // Room for two slices' gradients, not four: two slices of two threads, and the run trains.
  const auto room_for_two = "VIT_AVAILABLE_MEMORY_MB=" + std::to_string(memory_needed_mib(ample.err, 0.75));
  const auto two = train("two", "", room_for_two);
  ASSERT_EQ(two.exit_code, 0) << two.err;
  EXPECT_NE(two.err.find("memory: the gradients of a batch slice per thread do not fit"), std::string::npos) << two.err;
  EXPECT_NE(two.err.find("runs as 2 slices, 2 threads each"), std::string::npos) << two.err;
  EXPECT_NEAR(logged_memory_mib(two.err, "batch slices' gradients"), four_slices / 2.0, 0.2) << two.err;
  EXPECT_TRUE(fs::exists(dir / "two" / "last.ckpt"));
  // Room for none beside the rest: the batch runs whole.
  const auto whole = train("whole", "", "VIT_AVAILABLE_MEMORY_MB=" + std::to_string(memory_needed_mib(ample.err, 0.0)));
  ASSERT_EQ(whole.exit_code, 0) << whole.err;
  EXPECT_NE(whole.err.find("the batch runs whole"), std::string::npos) << whole.err;
  EXPECT_EQ(whole.err.find("runs as"), std::string::npos) << whole.err;

  // Slices the config asks for are what it gets: refused where they do not fit, unless forced.
  const auto asked = train("asked", " --set train.batch_slices=4", room_for_two);
  EXPECT_EQ(asked.exit_code, 2);
  EXPECT_NE(asked.err.find("cut the batch into fewer slices (train.batch_slices"), std::string::npos) << asked.err;
  const auto forced = train("forced", " --force", room_for_two);
  ASSERT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_NE(forced.err.find("runs as 4 slices, 1 thread each"), std::string::npos) << forced.err;
}

TEST(Train, UsageErrorsExitWithTwo) {
  TempDir dir;
  const auto config = tiny_config(dir);
  EXPECT_EQ(run_vit("train --config " + config + " --set train.lrr=1").exit_code, 2);
  EXPECT_EQ(run_vit("train --config " + config + " --set train.amp=fp16 --device cpu").exit_code, 2);
  const auto gpu = run_vit("train --config " + config + " --device cuda:0");
  EXPECT_EQ(gpu.exit_code, 2);
  EXPECT_NE(gpu.err.find("no CUDA device"), std::string::npos) << gpu.err;
  const auto missing = run_vit("eval --checkpoint " + (dir / "nothing.ckpt").string());
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_NE(missing.err.find("nothing.ckpt: no such vitcpp checkpoint file"), std::string::npos) << missing.err;
  write_file(dir / "random.ckpt", "definitely not a zip archive");
  const auto random = run_vit("eval --checkpoint " + (dir / "random.ckpt").string());
  EXPECT_EQ(random.exit_code, 1);
  EXPECT_NE(random.err.find("random.ckpt: not a readable vitcpp checkpoint"), std::string::npos) << random.err;
  EXPECT_EQ(count_lines(random.err), 1u);
}

}  // namespace
}  // namespace vit::testing
