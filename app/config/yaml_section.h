#pragma once

#include "app/errors.h"

#include <yaml-cpp/yaml.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace vit::app {

// Reads one YAML mapping into typed fields. Every key a caller asks for is remembered, so
// finish() can reject the keys nobody asked for, suggesting the closest known one. Errors are
// ConfigError messages of the form "FILE:LINE: section.key: what is wrong".
class YamlSection {
 public:
  // Keys set by --set (dotted) and the assignment that set each, so that an error in one names the
  // command line instead of a line of the file.
  using Overrides = std::map<std::string, std::string>;

  YamlSection(YAML::Node node, std::string path, std::string source,
              std::shared_ptr<const Overrides> overrides = std::make_shared<Overrides>());

  // Each reader leaves `value` untouched when the key is absent and returns whether it was present.
  bool read(const std::string& key, bool& value);
  bool read(const std::string& key, std::string& value);
  bool read(const std::string& key, std::vector<double>& value);
  bool read(const std::string& key, std::vector<std::string>& value);
  // A two-number list [low, high] with min <= low <= high <= max.
  bool read_interval(const std::string& key, double& low, double& high, double min, double max);
  bool read_int(const std::string& key, int64_t& value, int64_t min, int64_t max);
  bool read_double(const std::string& key, double& value, double min, double max);
  template <typename Enum>
  bool read_choice(const std::string& key, Enum& value, const std::vector<std::pair<std::string, Enum>>& choices);
  // A name that must be one of `names`.
  bool read_choice(const std::string& key, std::string& value, const std::vector<std::string>& names);

  // A nested mapping (empty when absent); its keys count as known here.
  YamlSection section(const std::string& key);
  bool has(const std::string& key) const;
  // Rejects unknown keys; call after reading every field.
  void finish() const;

  // "FILE:LINE: path.key: message" for the key (or the section when key is empty).
  [[noreturn]] void fail(const std::string& key, const std::string& message) const;

 private:
  YAML::Node scalar(const std::string& key);    // null node when absent
  YAML::Node sequence(const std::string& key);  // null node when absent
  template <typename T>
  T convert(const std::string& key, const YAML::Node& node, const char* expected) const;
  template <typename T>
  void check_range(const std::string& key, T value, T min, T max) const;
  std::string choose(const std::string& key, const std::vector<std::string>& names);
  // "FILE:LINE", or "--set KEY=VALUE" for a key that came from the command line.
  std::string location(const std::string& key, const YAML::Node& node) const;
  std::string qualified(const std::string& key) const;

  YAML::Node node_;
  std::string path_;
  std::string source_;
  std::shared_ptr<const Overrides> overrides_;
  std::set<std::string> known_;
};

template <typename Enum>
bool YamlSection::read_choice(const std::string& key, Enum& value,
                              const std::vector<std::pair<std::string, Enum>>& choices) {
  std::vector<std::string> names;
  for (const auto& choice : choices) names.push_back(choice.first);
  std::string chosen;
  if (!read_choice(key, chosen, names)) return false;
  for (const auto& choice : choices) {
    if (choice.first == chosen) value = choice.second;
  }
  return true;
}

// The known name closest to `name` by edit distance, or "" when none is reasonably close.
std::string closest_name(const std::string& name, const std::vector<std::string>& known);

}  // namespace vit::app
