#include "app/commands/image_inputs.h"

#include "data/image_file.h"
#include "data/image_folder.h"

#include <algorithm>
#include <map>
#include <set>

namespace vit::app {

namespace fs = std::filesystem;

std::vector<fs::path> expand_image_inputs(const std::vector<std::string>& inputs) {
  std::vector<fs::path> files;
  for (const auto& input : inputs) {
    std::error_code error;
    if (fs::is_directory(input, error)) {
      std::vector<fs::path> found;
      for (fs::recursive_directory_iterator it(input, error), end; !error && it != end; it.increment(error)) {
        if (it->is_regular_file() && data::has_image_extension(it->path())) found.push_back(it->path());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else {
      files.emplace_back(input);
    }
  }
  return files;
}

std::vector<std::string> unique_names(const std::vector<std::filesystem::path>& files) {
  std::map<std::string, int> uses;
  for (const auto& file : files) ++uses[file.stem().string()];
  std::vector<std::string> names;
  std::set<std::string> taken;
  for (const auto& file : files) {
    auto name = file.stem().string();
    if (uses[name] > 1) {
      name = std::filesystem::absolute(file).lexically_normal().parent_path().filename().string() + "_" + name;
    }
    const auto base = name;
    for (int copy = 2; !taken.insert(name).second; ++copy) name = base + "_" + std::to_string(copy);
    names.push_back(name);
  }
  return names;
}

PreparedImage prepare_image(const fs::path& file, const data::Transform& transform) {
  const auto image = data::read_image(file, transform.channels(), 100'000'000);
  PreparedImage prepared;
  prepared.input = torch::empty({1, transform.channels(), transform.size(), transform.size()});
  // Evaluation transforms draw nothing; the generator only satisfies the interface.
  data::Random unused(0);
  transform.apply(image, unused, prepared.input.data_ptr<float>());
  data::Random same(0);
  prepared.shown = transform.augment(image, same);
  return prepared;
}

}  // namespace vit::app
