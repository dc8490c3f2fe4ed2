#pragma once

#include "data/dataset.h"

#include <filesystem>
#include <istream>

namespace vit::data {

struct CsvEntry {
  std::filesystem::path path;  // resolved against the list file's folder
  int64_t label;
  size_t line;  // in the list file, for messages
};

struct CsvList {
  std::vector<CsvEntry> entries;
  std::vector<std::string> class_names;
};

// Parses "path,label" lines. A label is a class index, or a class name: names then map to
// indices in sorted order unless `class_names` (from the config) fixes them. An optional header
// line "path,label" is skipped, as are blank lines and lines starting with '#'. Paths may be
// double-quoted (for commas). A list of paths alone (header "path") is of unlabeled images: its
// labels are kNoLabel and it has no class names. Throws DataError naming `source` and the line.
CsvList parse_csv_list(std::istream& lines, const std::string& source, const std::filesystem::path& base_dir,
                       const std::vector<std::string>& class_names);

class CsvListDataset : public Dataset {
 public:
  // With `check_files`, a listed file that does not exist is an error here, before training.
  CsvListDataset(const std::filesystem::path& list_file, const std::vector<std::string>& class_names,
                 int64_t max_pixels, bool check_files = true);

  size_t size() const override { return list_.entries.size(); }
  int64_t label(size_t index) const override { return list_.entries[index].label; }
  cv::Mat load(size_t index, int channels) const override;
  std::string describe(size_t index) const override { return list_.entries[index].path.string(); }
  const std::vector<std::string>& class_names() const override { return list_.class_names; }
  std::optional<ImageSize> stored_size(size_t index) const override;

 private:
  CsvList list_;
  int64_t max_pixels_;
};

}  // namespace vit::data
