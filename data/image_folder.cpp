#include "data/image_folder.h"

#include "data/errors.h"
#include "data/image_file.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace vit::data {

bool has_image_extension(const std::filesystem::path& file) {
  static const std::array<std::string, 7> kExtensions = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"};
  auto extension = file.extension().string();
  std::transform(extension.begin(), extension.end(), extension.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::find(kExtensions.begin(), kExtensions.end(), extension) != kExtensions.end();
}

namespace {

// The image files in `dir` (`Iterator`: directory_iterator, or recursive_directory_iterator for
// the folders below it too), sorted. File symlinks count, a dangling or looping one reported when
// it is loaded; symlinked directories are not descended into, so a directory loop cannot trap the walk.
template <typename Iterator>
std::vector<std::filesystem::path> image_files(const std::filesystem::path& dir) {
  std::error_code error;
  std::vector<std::filesystem::path> files;
  for (Iterator it(dir, error), end; !error && it != end; it.increment(error)) {
    std::error_code status_error;
    const bool candidate = it->is_symlink(status_error) || it->is_regular_file(status_error);
    if (candidate && has_image_extension(it->path())) files.push_back(it->path());
  }
  if (error) throw DataError(dir.string() + ": cannot list: " + error.message());
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(const std::filesystem::path& root, int64_t max_pixels,
                                       const std::vector<std::string>& class_names)
    : max_pixels_(max_pixels) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_directory(root, error)) throw DataError(root.string() + ": image folder root does not exist");

  std::vector<fs::path> class_dirs;
  for (fs::directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
    if (it->is_directory(error)) class_dirs.push_back(it->path());
  }
  if (error) throw DataError(root.string() + ": cannot list: " + error.message());
  std::sort(class_dirs.begin(), class_dirs.end());
  if (class_dirs.empty()) {
    auto files = image_files<fs::directory_iterator>(root);
    if (files.empty()) {
      throw DataError(root.string() +
                      ": neither class folders (root/<class>/<image>) nor images (unlabeled, for pretraining)");
    }
    for (auto& file : files) samples_.push_back({std::move(file), kNoLabel});
    return;
  }
  if (!class_names.empty()) {
    std::vector<std::string> found;
    for (const auto& dir : class_dirs) found.push_back(dir.filename().string());
    std::vector<std::string> wanted = class_names;
    std::sort(wanted.begin(), wanted.end());
    if (wanted != found) {
      std::string listed;
      for (const auto& name : found) listed += (listed.empty() ? "" : ", ") + name;
      throw DataError(root.string() + ": data.class_names must name its class folders exactly, which are: " + listed);
    }
    class_dirs.clear();
    for (const auto& name : class_names) class_dirs.push_back(root / name);
  }

  for (const auto& class_dir : class_dirs) {
    const auto label = static_cast<int64_t>(class_names_.size());
    class_names_.push_back(class_dir.filename().string());
    auto files = image_files<fs::recursive_directory_iterator>(class_dir);
    if (files.empty()) throw DataError(class_dir.string() + ": class folder contains no images");
    for (auto& file : files) samples_.push_back({std::move(file), label});
  }
}

std::optional<ImageSize> ImageFolderDataset::stored_size(size_t index) const {
  return read_image_file_size(samples_[index].path);
}

cv::Mat ImageFolderDataset::load(size_t index, int channels) const {
  return read_image(samples_[index].path, channels, max_pixels_);
}

}  // namespace vit::data
