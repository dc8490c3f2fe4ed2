#include "data/csv_list.h"

#include "data/errors.h"
#include "data/image_file.h"
#include "data/regular_file.h"

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>

namespace vit::data {
namespace {

// Numeric labels without data.class_names name classes "0".."max"; a larger label is a typo.
constexpr int64_t kMaxNumberedClasses = 100000;

std::string trim(const std::string& text) {
  const auto first = text.find_first_not_of(" \t\r");
  if (first == std::string::npos) return "";
  const auto last = text.find_last_not_of(" \t\r");
  return text.substr(first, last - first + 1);
}

struct RawLine {
  std::string path;
  std::string label;
  size_t line_number;
};

// Splits "path,label" where path may be "double ""quoted"", with commas"; nullopt if malformed.
std::optional<std::pair<std::string, std::string>> split_line(const std::string& line) {
  std::string path;
  size_t at = 0;
  if (!line.empty() && line[0] == '"') {
    for (at = 1; at < line.size(); ++at) {
      if (line[at] == '"') {
        if (at + 1 < line.size() && line[at + 1] == '"') {
          path.push_back('"');
          ++at;
        } else {
          break;
        }
      } else {
        path.push_back(line[at]);
      }
    }
    if (at >= line.size()) return std::nullopt;  // unterminated quote
    ++at;
    if (at >= line.size() || line[at] != ',') return std::nullopt;
  } else {
    at = line.find(',');
    if (at == std::string::npos) return std::nullopt;
    path = trim(line.substr(0, at));
  }
  const auto label = trim(line.substr(at + 1));
  if (path.empty() || label.empty() || label.find(',') != std::string::npos) return std::nullopt;
  return std::make_pair(path, label);
}

// A line of an unlabeled list: a path alone, double-quoted where it holds commas; else nullopt.
std::optional<std::string> path_alone(const std::string& line) {
  if (line.empty()) return std::nullopt;
  if (line[0] != '"') {
    if (line.find(',') != std::string::npos) return std::nullopt;
    return line;
  }
  std::string path;
  for (size_t at = 1; at < line.size(); ++at) {
    if (line[at] != '"') {
      path.push_back(line[at]);
    } else if (at + 1 < line.size() && line[at + 1] == '"') {
      path.push_back('"');
      ++at;
    } else {
      if (at + 1 != line.size() || path.empty()) return std::nullopt;
      return path;
    }
  }
  return std::nullopt;  // unterminated quote
}

std::optional<int64_t> parse_index(const std::string& text) {
  int64_t value = 0;
  const auto* end = text.data() + text.size();
  const auto [ptr, error] = std::from_chars(text.data(), end, value);
  if (error != std::errc() || ptr != end) return std::nullopt;
  return value;
}

enum class LabelKind { Index, Name };

// A class index is written as a whole number without sign or leading zeros; a label that reads
// as a number in any other way ("1.0", "+1", "007", "1e3", one past int64) is ambiguous: silently
// treating it as a name would renumber every class.
LabelKind label_kind(const std::string& label, size_t line_number, const std::string& source) {
  const bool digits = label.find_first_not_of("0123456789") == std::string::npos;
  if (digits && (label.size() == 1 || label[0] != '0') && parse_index(label)) return LabelKind::Index;
  char* end = nullptr;
  const bool numeric_start = std::string("0123456789+-.").find(label.front()) != std::string::npos;
  if (numeric_start) std::strtod(label.c_str(), &end);
  if (digits || (numeric_start && end == label.c_str() + label.size())) {
    throw DataError(source + ":" + std::to_string(line_number) + ": label '" + label +
                    "' reads as a number but is not a class index (0, 1, 2, ... within 64 bits); write indices as "
                    "plain whole numbers, or give every class a name");
  }
  return LabelKind::Name;
}

}  // namespace

CsvList parse_csv_list(std::istream& lines, const std::string& source, const std::filesystem::path& base_dir,
                       const std::vector<std::string>& class_names) {
  const auto fail = [&](size_t line_number, const std::string& message) {
    throw DataError(source + ":" + std::to_string(line_number) + ": " + message);
  };
  std::vector<RawLine> raw;
  bool unlabeled = false;         // the first entry is a path alone: every entry must be
  std::optional<LabelKind> kind;  // the first label's; every other must be of the same kind
  size_t kind_line = 0;
  size_t line_number = 0;
  for (std::string line; std::getline(lines, line);) {
    ++line_number;
    // A UTF-8 byte-order mark (spreadsheet exports) is not part of the first path.
    if (line_number == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);
    const auto text = trim(line);
    if (text.empty() || text[0] == '#') continue;
    if (raw.empty() && text == "path,label") continue;
    if (raw.empty() && text == "path") {
      unlabeled = true;
      continue;
    }
    const auto alone = path_alone(text);
    if (raw.empty() && alone) unlabeled = true;
    if (unlabeled) {
      if (!alone) fail(line_number, "expected a path alone (the list's first entry has no label), got '" + text + "'");
      raw.push_back({*alone, "", line_number});
      continue;
    }
    const auto fields = split_line(text);
    if (!fields) fail(line_number, "expected 'path,label', got '" + text + "'");
    const auto this_kind = label_kind(fields->second, line_number, source);
    if (!kind) {
      kind = this_kind;
      kind_line = line_number;
    } else if (this_kind != *kind) {
      fail(line_number, "label '" + fields->second + "' is a class " +
                            (this_kind == LabelKind::Index ? "index" : "name") + " but line " +
                            std::to_string(kind_line) + "'s label is a class " +
                            (*kind == LabelKind::Index ? "index" : "name") +
                            "; a list uses one kind (names map to indices through data.class_names, else in sorted "
                            "order)");
    }
    raw.push_back({fields->first, fields->second, line_number});
  }
  if (raw.empty()) throw DataError(source + ": the list has no entries");
  CsvList list;
  const auto resolved = [&](const std::string& path) {
    const std::filesystem::path file = path;
    return file.is_absolute() ? file : base_dir / file;
  };
  if (unlabeled) {
    for (const auto& entry : raw) list.entries.push_back({resolved(entry.path), kNoLabel, entry.line_number});
    return list;
  }
  const bool all_indices = kind == LabelKind::Index;

  std::map<std::string, int64_t> index_of_name;
  if (!class_names.empty()) {
    list.class_names = class_names;
  } else if (!all_indices) {
    std::set<std::string> names;
    for (const auto& entry : raw) names.insert(entry.label);
    list.class_names.assign(names.begin(), names.end());
  }
  for (size_t i = 0; i < list.class_names.size(); ++i) index_of_name[list.class_names[i]] = static_cast<int64_t>(i);

  int64_t max_label = -1;
  for (const auto& entry : raw) {
    int64_t label = 0;
    if (all_indices) {
      label = *parse_index(entry.label);
      if (list.class_names.empty() && label >= kMaxNumberedClasses) {
        fail(entry.line_number, "label " + entry.label + " implies more than " + std::to_string(kMaxNumberedClasses) +
                                    " classes; list them in data.class_names");
      }
      if (!list.class_names.empty() && label >= static_cast<int64_t>(list.class_names.size())) {
        fail(entry.line_number,
             "label " + entry.label + " is out of range for " + std::to_string(list.class_names.size()) + " classes");
      }
    } else {
      const auto found = index_of_name.find(entry.label);
      if (found == index_of_name.end()) fail(entry.line_number, "unknown class name '" + entry.label + "'");
      label = found->second;
    }
    max_label = std::max(max_label, label);
    list.entries.push_back({resolved(entry.path), label, entry.line_number});
  }
  if (list.class_names.empty()) {
    for (int64_t i = 0; i <= max_label; ++i) list.class_names.push_back(std::to_string(i));
  }
  return list;
}

CsvListDataset::CsvListDataset(const std::filesystem::path& list_file, const std::vector<std::string>& class_names,
                               int64_t max_pixels, bool check_files)
    : max_pixels_(max_pixels) {
  std::istringstream stream(read_regular_text(list_file, "CSV list", uint64_t{1} << 30));
  list_ = parse_csv_list(stream, list_file.string(), list_file.parent_path(), class_names);
  if (!check_files) return;
  for (const auto& entry : list_.entries) {
    std::error_code error;
    if (!std::filesystem::exists(entry.path, error)) {
      throw DataError(list_file.string() + ":" + std::to_string(entry.line) + ": " + entry.path.string() +
                      " does not exist");
    }
  }
}

std::optional<ImageSize> CsvListDataset::stored_size(size_t index) const {
  return read_image_file_size(list_.entries[index].path);
}

cv::Mat CsvListDataset::load(size_t index, int channels) const {
  return read_image(list_.entries[index].path, channels, max_pixels_);
}

}  // namespace vit::data
