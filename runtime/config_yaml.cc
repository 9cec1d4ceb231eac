// The effective configuration (file, overrides and defaults) as YAML: config.resolved, to_yaml,
// and the defaults column of docs/configuration.md.
#include <limits>
#include <sstream>
#include <string>
#include <type_traits>
#include <variant>
#include <vector>

#include "runtime/config.h"
#include "runtime/config_schema.h"

namespace sf::runtime {
namespace detail {
namespace {

YAML::Node to_node(const std::string& value) { return YAML::Node(value); }
YAML::Node to_node(bool value) { return YAML::Node(value); }
YAML::Node to_node(ByteSize value) { return YAML::Node(format_byte_size(value)); }
YAML::Node to_node(double value) {
  std::ostringstream text;  // shortest text that reads back as the same double
  text.precision(std::numeric_limits<double>::max_digits10);
  text << value;
  double shorter = 0;
  for (int digits = 1; digits < std::numeric_limits<double>::max_digits10; ++digits) {
    std::ostringstream attempt;
    attempt.precision(digits);
    attempt << value;
    std::istringstream(attempt.str()) >> shorter;
    if (shorter == value) return YAML::Node(attempt.str());
  }
  return YAML::Node(text.str());
}

template <typename Int>
std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>, YAML::Node> to_node(
    Int value) {
  return YAML::Node(value);
}

// An empty list (a default such as partition.scan_cost) is written as null, which reads back
// as the default: [] is an error on input.
template <typename T>
YAML::Node to_node(const std::vector<T>& values) {
  if (values.empty()) return YAML::Node(YAML::NodeType::Null);
  YAML::Node node(YAML::NodeType::Sequence);
  for (const T& value : values) node.push_back(to_node(value));
  node.SetStyle(YAML::EmitterStyle::Flow);
  return node;
}

}  // namespace

YAML::Node value_node(const Target& target) {
  return std::visit([](auto* value) { return to_node(*value); }, target);
}

YAML::Node resolve(const Config& config) {
  Config copy = config;  // bind() hands out non-const pointers
  YAML::Node root(YAML::NodeType::Map);
  for (const Field& field : schema()) {
    std::vector<std::string> parts = split_key(std::string(field.key));
    YAML::Node node = root;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      if (!node[parts[i]].IsDefined()) node[parts[i]] = YAML::Node(YAML::NodeType::Map);
      YAML::Node child = node[parts[i]];
      node.reset(child);
    }
    node[parts.back()] = value_node(field.bind(copy));
  }
  return root;
}

}  // namespace detail

std::string to_yaml(const Config& config) {
  YAML::Emitter out;
  out << detail::resolve(config);
  return std::string(out.c_str()) + "\n";
}

}  // namespace sf::runtime
