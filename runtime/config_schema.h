// Internal to runtime/config*.cc: the schema rows (runtime/config.cc) that loading
// (config_load.cc), the effective YAML (config_yaml.cc) and the reference (config_reference.cc)
// all walk. Not part of the public interface: include runtime/config.h.
#pragma once

#include <cstdint>
#include <limits>
#include <set>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "runtime/config.h"

namespace sf::runtime::detail {

// Where a key's value lives in Config. The alternative decides how the YAML value is parsed.
using Target = std::variant<std::string*, bool*, int*, int64_t*, uint64_t*, double*, ByteSize*,
                            std::vector<std::string>*, std::vector<int>*, std::vector<double>*>;
using Bind = Target (*)(Config&);

template <auto kSection, auto kMember>
Target bind(Config& config) {
  return &((config.*kSection).*kMember);
}

template <auto kMember>
Target bind(Config& config) {
  return &(config.*kMember);
}

inline constexpr int64_t kNoMin = std::numeric_limits<int64_t>::min();
inline constexpr int64_t kNoMax = std::numeric_limits<int64_t>::max();

// Validation of one key. Lists given as [] are always an error; list elements follow the rule.
struct Rule {
  bool required = false;  // absent or null is an error; a required string must be non-empty
  int64_t min = kNoMin;   // integers (and integer list elements)
  int64_t max = kNoMax;
  double low = -std::numeric_limits<double>::infinity();  // reals: the closed range [low, high]
  double high = std::numeric_limits<double>::infinity();
  std::vector<std::string_view> choices;  // strings: allowed values, if non-empty
  size_t length = 0;  // lists: exactly this many elements, if non-zero
};

struct Field {
  std::string_view key;  // dotted path
  Bind bind;
  Rule rule;
  // What the key does, as markdown (docs/configuration.md is generated from it; links are
  // relative to docs/). The type, the allowed values and the default come from the row itself.
  std::string_view doc;
};

// One row per leaf key, in the order of to_yaml's output and of docs/configuration.md.
const std::vector<Field>& schema();

// Every proper prefix of a schema key ("input", "index", ...): keys whose value is a map.
const std::set<std::string>& sections();

// The row of `key`, or nullptr.
const Field* find_field(const std::string& key);

// "a.b.c" -> {"a", "b", "c"}.
std::vector<std::string> split_key(const std::string& key);

// The value `target` points to as YAML, as the effective config writes it (config_yaml.cc).
YAML::Node value_node(const Target& target);

// Every schema key with its value in `config`, nested by section, in schema order.
YAML::Node resolve(const Config& config);

}  // namespace sf::runtime::detail
