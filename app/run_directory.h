#pragma once

#include <filesystem>
#include <vector>

namespace vit::app {

// The files `vit train` writes into a run directory (checkpoints, config, metrics, plots) that
// `dir` already holds; empty for a new or unrelated folder.
std::vector<std::filesystem::path> run_files(const std::filesystem::path& dir);
// Removes run_files(dir), leaving anything else in the folder alone (--overwrite).
void remove_run_files(const std::filesystem::path& dir);

}  // namespace vit::app
