#pragma once

#include "models/core/image_model.h"
#include "support/test_support.h"

#include <sys/types.h>

#include <filesystem>
#include <string>
#include <vector>

namespace vit::testing {

// 16x16 images: class "left" is bright on the left half, "right" on the right half, both with
// noise, so only where the brightness is tells the classes apart. Grey, or with 3 channels of
// independent noise (colours for saturation and hue to act on).
void write_halves_dataset(const std::filesystem::path& root, int per_class, int seed, int channels = 1);
// 16x16 grey images of noise where only the top-left 8x8 quadrant tells the classes apart: it is
// bright in class "bright" and dark in class "dark".
void write_corner_dataset(const std::filesystem::path& root, int per_class, int seed);
// Writes a halves dataset (train: 64 per class, val: 16) into `dir`; returns the config's data
// section that reads it.
std::string halves_data(const TempDir& dir);
// Writes a halves dataset (train: 64 per class, val: 16) and the config of a tiny ViT for it
// into `dir`; returns the config's path.
std::string tiny_config(const TempDir& dir);
// What Python's torch.jit.load makes of an exported model fed a greyscale image, preprocessed with
// the mean and std of the export's config.json: JSON {"logits", "classes", "keys" (the first three
// state_dict names)}.
std::string python_jit_predict(const TempDir& dir, const std::filesystem::path& model,
                               const std::filesystem::path& grey_image);
// The model of a checkpoint file, built from its config, in eval mode.
models::ImageModel load_checkpoint_model(const std::filesystem::path& checkpoint);
// "step:loss" of every row of a steps.csv.
std::vector<std::string> loss_column(const std::filesystem::path& steps_csv);
size_t count_lines(const std::string& text);

// MiB of a part of the memory estimate a training run logs ("optimizer state", "batch slices'
// gradients"); -1 where the log has none.
double logged_memory_mib(const std::string& log, const std::string& part);
// MiB the logged estimate still needs (all but what the process holds already) with `fraction` of
// its batch slices' gradients, plus 1 MiB: the memory to make available for that to fit.
double memory_needed_mib(const std::string& log, double fraction);

// Starts `vit arguments` in the background with stdout and stderr in `log` and `environment`
// ("NAME=value ...") added to its environment; returns its pid.
pid_t spawn_vit(const std::string& arguments, const std::filesystem::path& log, const std::string& environment = "");
// Waits for the process; its exit code, or 128 + the signal that ended it.
int wait_exit_code(pid_t pid);

}  // namespace vit::testing
