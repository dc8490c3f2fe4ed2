#include "app/config/yaml_section.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <sstream>

namespace vit::app {
namespace {

size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t substitution = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitution});
    }
  }
  return row[b.size()];
}

std::string join(const std::vector<std::string>& names) {
  std::string joined;
  for (const auto& name : names) joined += (joined.empty() ? "" : ", ") + name;
  return joined;
}

}  // namespace

std::string closest_name(const std::string& name, const std::vector<std::string>& known) {
  std::string best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (const auto& candidate : known) {
    const size_t distance = edit_distance(name, candidate);
    if (distance < best_distance) {
      best = candidate;
      best_distance = distance;
    }
  }
  // Suggest only what is plausibly a typo: at most half of the name changed.
  return best_distance <= std::max<size_t>(2, name.size() / 2) ? best : "";
}

YamlSection::YamlSection(YAML::Node node, std::string path, std::string source,
                         std::shared_ptr<const Overrides> overrides)
    : node_(std::move(node)), path_(std::move(path)), source_(std::move(source)), overrides_(std::move(overrides)) {
  if (node_.IsDefined() && !node_.IsNull() && !node_.IsMap()) fail("", "expected a mapping of keys to values");
  if (!node_.IsMap()) return;
  // yaml-cpp keeps the first of two equal keys; a hand-edited file meant the other one.
  std::map<std::string, YAML::Mark> seen;
  for (const auto& entry : node_) {
    const auto key = entry.first.Scalar();
    if (const auto [where, inserted] = seen.emplace(key, entry.first.Mark()); !inserted) {
      throw ConfigError(location(key, entry.first) + ": duplicate key '" + qualified(key) + "' (first given on line " +
                        std::to_string(where->second.line + 1) + ")");
    }
  }
}

std::string YamlSection::location(const std::string& key, const YAML::Node& node) const {
  // The longest overridden prefix of the key: --set train.mixup={...} covers train.mixup.prob.
  for (auto prefix = qualified(key); !prefix.empty(); prefix = prefix.substr(0, prefix.rfind('.'))) {
    if (const auto found = overrides_->find(prefix); found != overrides_->end()) return "--set " + found->second;
    if (prefix.find('.') == std::string::npos) break;
  }
  const auto mark = node.Mark();
  if (mark.is_null()) return "--set";  // created by a command-line override, not read from a file
  return source_ + ":" + std::to_string(mark.line + 1);
}

std::string YamlSection::qualified(const std::string& key) const {
  if (key.empty()) return path_;
  return path_.empty() ? key : path_ + "." + key;
}

void YamlSection::fail(const std::string& key, const std::string& message) const {
  // The key's own node when present, for its line. (Assigning to a YAML::Node that refers to a
  // document node overwrites that node, so the choice is made without assignment.)
  const auto node_of_key = [&]() -> YAML::Node {
    if (!key.empty() && node_.IsMap()) {
      for (const auto& entry : node_) {
        if (entry.first.Scalar() == key) return entry.second;
      }
    }
    return node_;
  };
  const auto where = qualified(key);
  throw ConfigError(location(key, node_of_key()) + ": " + (where.empty() ? "" : where + ": ") + message);
}

YAML::Node YamlSection::scalar(const std::string& key) {
  known_.insert(key);
  if (!node_.IsMap() || !node_[key]) return YAML::Node();
  const YAML::Node value = node_[key];
  if (!value.IsScalar()) fail(key, "expected a single value");
  return value;
}

template <typename T>
T YamlSection::convert(const std::string& key, const YAML::Node& node, const char* expected) const {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    fail(key, std::string("expected ") + expected + ", got '" + node.Scalar() + "'");
  }
}

template <typename T>
void YamlSection::check_range(const std::string& key, T value, T min, T max) const {
  if (value >= min && value <= max) return;
  std::ostringstream range;
  range << "must be in [" << min << ", " << max << "], got " << value;
  fail(key, range.str());
}

bool YamlSection::read(const std::string& key, bool& value) {
  const auto node = scalar(key);
  if (node.IsNull()) return false;
  value = convert<bool>(key, node, "true or false");
  return true;
}

bool YamlSection::read(const std::string& key, std::string& value) {
  const auto node = scalar(key);
  if (node.IsNull()) return false;
  value = node.Scalar();
  return true;
}

YAML::Node YamlSection::sequence(const std::string& key) {
  known_.insert(key);
  if (!node_.IsMap() || !node_[key]) return YAML::Node();
  const YAML::Node list = node_[key];
  if (!list.IsSequence()) fail(key, "expected a list such as [a, b]");
  return list;
}

bool YamlSection::read(const std::string& key, std::vector<std::string>& value) {
  const auto list = sequence(key);
  if (list.IsNull()) return false;
  std::vector<std::string> items;
  for (const auto& item : list) {
    if (!item.IsScalar()) fail(key, "expected a list of names");
    items.push_back(item.Scalar());
  }
  value = std::move(items);
  return true;
}

bool YamlSection::read_interval(const std::string& key, double& low, double& high, double min, double max) {
  std::vector<double> pair;
  if (!read(key, pair)) return false;
  if (pair.size() != 2) fail(key, "expected two numbers [low, high]");
  if (pair[0] > pair[1]) fail(key, "low must not exceed high");
  check_range(key, pair[0], min, max);
  check_range(key, pair[1], min, max);
  low = pair[0];
  high = pair[1];
  return true;
}

bool YamlSection::has(const std::string& key) const { return node_.IsMap() && node_[key]; }

bool YamlSection::read(const std::string& key, std::vector<double>& value) {
  const auto list = sequence(key);
  if (list.IsNull()) return false;
  std::vector<double> numbers;
  for (const auto& item : list) {
    const auto number = convert<double>(key, item, "a list of numbers");
    if (!std::isfinite(number)) fail(key, "expected finite numbers, got '" + item.Scalar() + "'");
    numbers.push_back(number);
  }
  value = std::move(numbers);
  return true;
}

bool YamlSection::read_int(const std::string& key, int64_t& value, int64_t min, int64_t max) {
  const auto node = scalar(key);
  if (node.IsNull()) return false;
  const auto parsed = convert<int64_t>(key, node, "an integer");
  check_range(key, parsed, min, max);
  value = parsed;
  return true;
}

bool YamlSection::read_double(const std::string& key, double& value, double min, double max) {
  const auto node = scalar(key);
  if (node.IsNull()) return false;
  const auto parsed = convert<double>(key, node, "a number");
  if (!std::isfinite(parsed)) fail(key, "must be a finite number, got " + node.Scalar());
  check_range(key, parsed, min, max);
  value = parsed;
  return true;
}

std::string YamlSection::choose(const std::string& key, const std::vector<std::string>& names) {
  const auto node = scalar(key);
  if (node.IsNull()) return "";
  const auto& given = node.Scalar();
  if (std::find(names.begin(), names.end(), given) == names.end()) {
    fail(key, "'" + given + "' is not one of: " + join(names));
  }
  return given;
}

bool YamlSection::read_choice(const std::string& key, std::string& value, const std::vector<std::string>& names) {
  auto chosen = choose(key, names);
  if (chosen.empty()) return false;
  value = std::move(chosen);
  return true;
}

YamlSection YamlSection::section(const std::string& key) {
  known_.insert(key);
  const YAML::Node child = node_.IsMap() && node_[key] ? node_[key] : YAML::Node();
  return YamlSection(child, qualified(key), source_, overrides_);
}

void YamlSection::finish() const {
  if (!node_.IsMap()) return;
  const std::vector<std::string> known(known_.begin(), known_.end());
  for (const auto& entry : node_) {
    const auto key = entry.first.Scalar();
    if (known_.count(key)) continue;
    const auto suggestion = closest_name(key, known);
    throw ConfigError(location(key, entry.first) + ": unknown key '" + qualified(key) + "'" +
                      (suggestion.empty() ? " (valid keys: " + join(known) + ")"
                                          : " (did you mean '" + qualified(suggestion) + "'?)"));
  }
}

}  // namespace vit::app
