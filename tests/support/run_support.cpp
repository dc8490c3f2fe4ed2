#include "support/run_support.h"

#include "app/config/config.h"
#include "app/io/checkpoint.h"
#include "models/core/registry.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <random>
#include <sstream>

namespace vit::testing {

namespace fs = std::filesystem;

void write_halves_dataset(const fs::path& root, int per_class, int seed, int channels) {
  std::mt19937 random(static_cast<unsigned>(seed));
  std::normal_distribution<double> noise(0.0, 25.0);
  for (const std::string name : {"left", "right"}) {
    fs::create_directories(root / name);
    for (int i = 0; i < per_class; ++i) {
      cv::Mat image(16, 16, CV_8UC(channels));
      for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 16; ++x) {
          const bool bright = (x < 8) == (name == "left");
          for (int c = 0; c < channels; ++c) {
            image.ptr<uint8_t>(y)[x * channels + c] =
                cv::saturate_cast<uint8_t>((bright ? 170.0 : 70.0) + noise(random));
          }
        }
      }
      cv::imwrite((root / name / (std::to_string(i) + ".png")).string(), image);
    }
  }
}

void write_corner_dataset(const fs::path& root, int per_class, int seed) {
  std::mt19937 random(static_cast<unsigned>(seed));
  std::uniform_int_distribution<int> noise(0, 255);
  std::normal_distribution<double> jitter(0.0, 25.0);
  for (const std::string name : {"bright", "dark"}) {
    fs::create_directories(root / name);
    for (int i = 0; i < per_class; ++i) {
      cv::Mat image(16, 16, CV_8UC1);
      for (int y = 0; y < 16; ++y) {
        for (int x = 0; x < 16; ++x) {
          const bool corner = x < 8 && y < 8;
          image.at<uint8_t>(y, x) = corner
                                        ? cv::saturate_cast<uint8_t>((name == "bright" ? 200.0 : 55.0) + jitter(random))
                                        : static_cast<uint8_t>(noise(random));
        }
      }
      cv::imwrite((root / name / (std::to_string(i) + ".png")).string(), image);
    }
  }
}

std::string halves_data(const TempDir& dir) {
  write_halves_dataset(dir / "train", 64, 1);
  write_halves_dataset(dir / "val", 16, 2);
  return "data:\n"
         "  train: {source: imagefolder, path: " +
         (dir / "train").string() +
         "}\n"
         "  val: {source: imagefolder, path: " +
         (dir / "val").string() +
         "}\n"
         "  mean: [0.5]\n  std: [0.25]\n"
         "  workers: 2\n";
}

std::string tiny_config(const TempDir& dir) {
  const auto config = dir / "config.yaml";
  write_file(config,
             "model: {image_size: 16, patch_size: 4, in_chans: 1, num_classes: 2, dim: 32, depth: 2, heads: 2,\n"
             "        mlp_ratio: 2.0, drop_path: 0.1, dropout: 0.1}\n" +
                 halves_data(dir) +
                 "train:\n  epochs: 4\n  batch_size: 16\n  lr: 3.0e-3\n  warmup_steps: 2\n  threads: 2\n"
                 "  label_smoothing: 0.1\n  ema_decay: 0.9\n");
  return config.string();
}

std::string python_jit_predict(const TempDir& dir, const fs::path& model, const fs::path& grey_image) {
  const auto script = dir / "jit_predict.py";
  write_file(script,
             "import json, sys, torch\n"
             "import numpy as np\n"
             "from PIL import Image\n"
             "extra = {'config.json': ''}\n"
             "m = torch.jit.load(sys.argv[1], _extra_files=extra)\n"
             "meta = json.loads(extra['config.json'])\n"
             "x = np.asarray(Image.open(sys.argv[2]).convert('L'), dtype=np.float32) / 255.0\n"
             "x = (x - meta['mean'][0]) / meta['std'][0]\n"
             "out = m(torch.from_numpy(x)[None, None])\n"
             "print(json.dumps({'logits': out[0].tolist(), 'classes': meta['class_names'],\n"
             "                  'keys': list(m.state_dict().keys())[:3]}))\n");
  const auto output = dir / "jit_predict.json";
  const auto command = app::python_interpreter() + " " + script.string() + " " + model.string() + " " +
                       grey_image.string() + " > " + output.string();
  EXPECT_EQ(std::system(command.c_str()), 0) << command;
  return read_file(output);
}

models::ImageModel load_checkpoint_model(const fs::path& checkpoint) {
  app::CheckpointReader reader(checkpoint);
  auto model = models::build_model(app::load_config_text(reader.config_yaml(), "checkpoint", {}).model.options);
  reader.load_model(model, false);
  model->eval();
  return model;
}

std::vector<std::string> loss_column(const fs::path& steps_csv) {
  std::vector<std::string> losses;
  std::istringstream lines(read_file(steps_csv));
  std::string line;
  std::getline(lines, line);
  while (std::getline(lines, line)) {
    std::vector<std::string> cells;
    std::istringstream row(line);
    for (std::string cell; std::getline(row, cell, ',');) cells.push_back(cell);
    losses.push_back(cells.at(0) + ":" + cells.at(2));
  }
  return losses;
}

double logged_memory_mib(const std::string& log, const std::string& part) {
  const auto estimate = log.find("memory: an estimated peak of");
  const auto at = estimate == std::string::npos ? estimate : log.find(part + " ", estimate);
  if (at == std::string::npos) return -1.0;
  std::istringstream figure(log.substr(at + part.size() + 1));
  double value = 0.0;
  std::string unit;
  figure >> value >> unit;
  return unit.rfind("GiB", 0) == 0 ? value * 1024.0 : value;
}

double memory_needed_mib(const std::string& log, double fraction) {
  double needed = 1.0;
  for (const auto* part : {"weights and gradients", "optimizer state", "EMA", "loader batches", "activations"}) {
    const double mib = logged_memory_mib(log, part);
    EXPECT_GE(mib, 0.0) << part << " is not in the log: " << log;
    needed += mib;
  }
  return needed + fraction * std::max(0.0, logged_memory_mib(log, "batch slices' gradients"));
}

size_t count_lines(const std::string& text) { return static_cast<size_t>(std::count(text.begin(), text.end(), '\n')); }

pid_t spawn_vit(const std::string& arguments, const fs::path& log, const std::string& environment) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const auto command = "exec env " + environment + " " + VIT_BINARY + " " + arguments + " >" + log.string() + " 2>&1";
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return pid;
}

int wait_exit_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace vit::testing
