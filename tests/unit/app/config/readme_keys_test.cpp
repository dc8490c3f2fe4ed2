// The README's configuration blocks are the user's reference: they list exactly the keys the
// program declares (vit config --reference), no more and no fewer.

#include "app/config/config_reference.h"
#include "support/test_support.h"

#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <set>
#include <sstream>

namespace vit::testing {
namespace {

void collect_keys(const YAML::Node& node, const std::string& prefix, std::set<std::string>& keys) {
  for (const auto& item : node) {
    const auto key = prefix + item.first.Scalar();
    if (item.second.IsMap()) {
      collect_keys(item.second, key + ".", keys);
    } else {
      keys.insert(key);
    }
  }
}

// Every key of the README's ```yaml blocks that configure vitcpp (those opening with a section).
std::set<std::string> readme_keys() {
  std::istringstream lines(read_file(std::filesystem::path(VIT_SOURCE_DIR) / "README.md"));
  std::set<std::string> keys;
  std::string line;
  std::string block;
  bool in_block = false;
  while (std::getline(lines, line)) {
    if (!in_block && line == "```yaml") {
      in_block = true;
      block.clear();
    } else if (in_block && line == "```") {
      in_block = false;
      const auto document = YAML::Load(block);
      if (document.IsMap() && (document["model"] || document["data"] || document["train"])) {
        collect_keys(document, "", keys);
      }
    } else if (in_block) {
      block += line + "\n";
    }
  }
  return keys;
}

TEST(ReadmeKeys, TheConfigurationBlocksListExactlyTheDeclaredKeys) {
  std::set<std::string> declared;
  for (const auto& key : app::config_reference()) declared.insert(key.key);
  const auto documented = readme_keys();
  std::vector<std::string> undocumented;
  std::vector<std::string> unknown;
  for (const auto& key : declared) {
    if (documented.count(key) == 0) undocumented.push_back(key);
  }
  for (const auto& key : documented) {
    if (declared.count(key) == 0) unknown.push_back(key);
  }
  EXPECT_TRUE(undocumented.empty()) << "declared but not in the README: " << ::testing::PrintToString(undocumented);
  EXPECT_TRUE(unknown.empty()) << "in the README but not declared: " << ::testing::PrintToString(unknown);
  EXPECT_GT(declared.size(), 100u);
}

}  // namespace
}  // namespace vit::testing
