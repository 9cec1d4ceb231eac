// load_config: the YAML file, the `--set` overrides, and every value checked against its schema
// row (type, range, choices; unknown keys with "did you mean"). Also require() and
// closest_match().
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <limits>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "io/input_paths.h"
#include "runtime/config.h"
#include "runtime/config_schema.h"

namespace sf::runtime {
namespace {

using detail::Field;
using detail::find_field;
using detail::kNoMax;
using detail::kNoMin;
using detail::Rule;
using detail::schema;
using detail::sections;
using detail::split_key;

std::string trim(const std::string& text) {
  const char* kSpace = " \t\r\n";
  size_t begin = text.find_first_not_of(kSpace);
  if (begin == std::string::npos) return "";
  size_t end = text.find_last_not_of(kSpace);
  return text.substr(begin, end - begin + 1);
}

// Optimal string alignment distance (Levenshtein plus adjacent transpositions).
size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

// The closest known key or section within distance 2, or "".
std::string suggest(const std::string& unknown) {
  std::vector<std::string> candidates;
  for (const Field& field : schema()) candidates.emplace_back(field.key);
  for (const std::string& section : sections()) candidates.push_back(section);
  return closest_match(unknown, candidates);
}

// How a node reads in a message: "'abc'", "a map", "a list", "null".
std::string describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return "'" + node.Scalar() + "'";
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a map";
    default:
      return "null";
  }
}

// An integer as sign and magnitude, so that int64 and uint64 values compare exactly.
struct Integer {
  bool negative = false;  // never true with magnitude 0
  uint64_t magnitude = 0;

  Integer() = default;
  explicit Integer(uint64_t value) : magnitude(value) {}
  explicit Integer(int64_t value)
      : negative(value < 0),
        magnitude(value < 0 ? static_cast<uint64_t>(-(value + 1)) + 1
                            : static_cast<uint64_t>(value)) {}
  explicit Integer(int value) : Integer(int64_t{value}) {}
  explicit Integer(unsigned value) : Integer(uint64_t{value}) {}

  friend bool operator<(const Integer& a, const Integer& b) {
    if (a.negative != b.negative) return a.negative;
    return a.negative ? a.magnitude > b.magnitude : a.magnitude < b.magnitude;
  }
  std::string str() const { return (negative ? "-" : "") + std::to_string(magnitude); }
};

enum class IntegerParse { kOk, kNotInteger, kOverflow };

// Decimal, with an optional sign; nothing else (no spaces, no exponent, no fraction).
IntegerParse parse_integer(const std::string& text, Integer& out) {
  const char* begin = text.data();
  const char* end = begin + text.size();
  bool negative = begin != end && *begin == '-';
  if (begin != end && (*begin == '-' || *begin == '+')) ++begin;
  if (begin == end || *begin < '0' || *begin > '9') return IntegerParse::kNotInteger;
  uint64_t magnitude = 0;
  auto [ptr, ec] = std::from_chars(begin, end, magnitude);
  if (ptr != end) return IntegerParse::kNotInteger;
  if (ec == std::errc::result_out_of_range) return IntegerParse::kOverflow;
  out.magnitude = magnitude;
  out.negative = negative && magnitude != 0;
  return IntegerParse::kOk;
}

class Loader {
 public:
  explicit Loader(std::string path) : path_(std::move(path)) {}

  // Reads and parses the file; the top level must be a map (an empty file is an empty map).
  void read_file() {
    std::error_code ec;
    if (std::filesystem::is_directory(path_, ec)) fail_file("is a directory, not a YAML file");
    std::ifstream in(path_);
    if (!in) fail_file(std::string("cannot open file: ") + std::strerror(errno));
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) fail_file("cannot read file");
    try {
      root_ = YAML::Load(text.str());
    } catch (const YAML::ParserException& e) {
      throw ConfigError(path_ + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": YAML syntax error: " + e.msg);
    } catch (const YAML::Exception& e) {
      fail_file(std::string("YAML error: ") + e.what());
    }
    if (root_.IsNull()) root_ = YAML::Node(YAML::NodeType::Map);
    if (!root_.IsMap()) fail_file("top level must be a map, got " + describe(root_));
    reject_duplicate_keys(root_, "");
  }

  // "a.b=value": sets a.b (creating maps on the way) to value parsed as YAML.
  void apply_override(const std::string& text) {
    size_t eq = text.find('=');
    std::string key = eq == std::string::npos ? "" : trim(text.substr(0, eq));
    std::vector<std::string> parts = split_key(key);
    bool malformed = key.empty() || std::any_of(parts.begin(), parts.end(),
                                                [](const std::string& p) { return p.empty(); });
    if (malformed) throw ConfigError("--set " + text + ": expected key=value");
    YAML::Node value;
    try {
      value = YAML::Load(text.substr(eq + 1));
    } catch (const YAML::ParserException& e) {
      throw ConfigError("--set " + text + ": bad YAML value: " + e.msg);
    }
    reject_duplicate_keys(value, key, &text);

    YAML::Node node = root_;
    for (size_t i = 0; i + 1 < parts.size(); ++i) {
      YAML::Node child = node[parts[i]];
      if (!child.IsMap()) {
        node[parts[i]] = YAML::Node(YAML::NodeType::Map);
        child.reset(node[parts[i]]);
      }
      node.reset(child);
    }
    node[parts.back()] = value;

    // The override now owns `key` and everything below it.
    for (auto it = origins_.begin(); it != origins_.end();) {
      bool below = it->first == key || it->first.rfind(key + ".", 0) == 0;
      it = below ? origins_.erase(it) : std::next(it);
    }
    origins_[key] = text;
  }

  // Checks every key against the schema and fills `config`.
  void build(Config& config) {
    collect(root_, "");
    for (const Field& field : schema()) {
      auto it = leaves_.find(std::string(field.key));
      std::string key(field.key);
      if (it == leaves_.end() || it->second.IsNull()) {
        if (field.rule.required) fail(key, key + " is required");
        continue;
      }
      std::visit([&](auto* target) { parse(key, it->second, field.rule, *target); },
                 field.bind(config));
    }
  }

 private:
  [[noreturn]] void fail_file(const std::string& what) const {
    throw ConfigError(path_ + ": " + what);
  }

  // Throws "<file>: <message>", naming the override that set `key` (or a key above or below
  // it, e.g. `--set eval={k: 0}` for eval.k, `--set seed.x=1` for seed) if one did.
  [[noreturn]] void fail(const std::string& key, const std::string& message) const {
    std::string text = path_ + ": " + message;
    const std::string* origin = nullptr;
    std::string prefix = key.substr(0, key.find('['));  // "eval.nprobe[1]" -> "eval.nprobe"
    for (std::string up = prefix; origin == nullptr;) {
      auto it = origins_.find(up);
      if (it != origins_.end()) origin = &it->second;
      size_t dot = up.rfind('.');
      if (dot == std::string::npos) break;
      up.resize(dot);
    }
    if (origin == nullptr) {
      auto it = origins_.lower_bound(prefix + ".");
      if (it != origins_.end() && it->first.rfind(prefix + ".", 0) == 0) origin = &it->second;
    }
    if (origin != nullptr) text += " (from --set " + *origin + ")";
    throw ConfigError(text);
  }

  [[noreturn]] void fail_value(const std::string& key, const std::string& what) const {
    fail(key, key + ": " + what);
  }

  // yaml-cpp keeps every entry of a repeated key (lookups and collect() would take one of
  // them silently): a key repeated in any map of the file, at any depth, is an error. With
  // `set_text`, `node` is the value of that --set.
  void reject_duplicate_keys(const YAML::Node& node, const std::string& prefix,
                             const std::string* set_text = nullptr) const {
    if (node.IsSequence()) {
      for (size_t i = 0; i < node.size(); ++i)
        reject_duplicate_keys(node[i], prefix + "[" + std::to_string(i) + "]", set_text);
      return;
    }
    if (!node.IsMap()) return;
    std::map<std::string, int> first_line;  // key -> its 1-based line
    for (const auto& entry : node) {
      if (!entry.first.IsScalar()) continue;
      const std::string& name = entry.first.Scalar();
      const std::string key = prefix.empty() ? name : prefix + "." + name;
      const int line = entry.first.Mark().line + 1;
      auto [it, fresh] = first_line.emplace(name, line);
      if (!fresh && set_text != nullptr)
        throw ConfigError("--set " + *set_text + ": duplicate key '" + key + "'");
      if (!fresh)
        fail_file("duplicate key '" + key + "' (lines " + std::to_string(it->second) + " and " +
                  std::to_string(line) + ")");
      reject_duplicate_keys(entry.second, key, set_text);
    }
  }

  // Walks the tree: known leaves go to leaves_, sections recurse, anything else is unknown.
  void collect(const YAML::Node& map, const std::string& prefix) {
    for (const auto& entry : map) {
      std::string name = entry.first.IsScalar() ? entry.first.Scalar() : describe(entry.first);
      std::string key = prefix.empty() ? name : prefix + "." + name;
      if (find_field(key) != nullptr) {
        leaves_[key] = entry.second;
      } else if (sections().count(key) != 0) {
        if (entry.second.IsMap()) {
          collect(entry.second, key);
        } else if (!entry.second.IsNull()) {
          fail_value(key, "expected a map, got " + describe(entry.second));
        }
      } else {
        std::string message = "unknown key '" + key + "'";
        std::string hint = suggest(key);
        if (!hint.empty()) message += " (did you mean '" + hint + "'?)";
        fail(key, message);
      }
    }
  }

  void check_scalar(const std::string& key, const YAML::Node& node, const char* expected) const {
    if (!node.IsScalar())
      fail_value(key, std::string("expected ") + expected + ", got " + describe(node));
  }

  void parse(const std::string& key, const YAML::Node& node, const Rule& rule,
             std::string& out) const {
    check_scalar(key, node, "a string");
    out = node.Scalar();
    if (rule.required && out.empty()) fail_value(key, "must not be empty");
    if (!rule.choices.empty() &&
        std::find(rule.choices.begin(), rule.choices.end(), out) == rule.choices.end()) {
      std::string allowed;
      for (std::string_view choice : rule.choices) {
        allowed += (allowed.empty() ? "" : "|") + std::string(choice);
      }
      fail_value(key, "expected one of " + allowed + ", got '" + out + "'");
    }
  }

  template <typename Int>
  std::enable_if_t<std::is_integral_v<Int> && !std::is_same_v<Int, bool>> parse(const std::string& key, const YAML::Node& node,
                                                  const Rule& rule, Int& out) const {
    check_scalar(key, node, "an integer");
    const std::string& text = node.Scalar();
    Integer value;
    switch (parse_integer(text, value)) {
      case IntegerParse::kOk:
        break;
      case IntegerParse::kNotInteger:
        fail_value(key, "expected an integer, got '" + text + "'");
      case IntegerParse::kOverflow:
        fail_value(key, "integer out of range, got '" + text + "'");
    }
    Integer min = std::max(Integer(rule.min), Integer(std::numeric_limits<Int>::min()));
    Integer max(std::numeric_limits<Int>::max());
    if (rule.max != kNoMax) max = std::min(max, Integer(rule.max));
    if (value < min || max < value) {
      std::string range;
      if (rule.max != kNoMax) {
        range = "between " + min.str() + " and " + max.str();
      } else {
        range = value < min ? ">= " + min.str() : "<= " + max.str();
      }
      fail_value(key, "must be " + range + ", got " + text);
    }
    out = value.negative ? static_cast<Int>(-static_cast<int64_t>(value.magnitude - 1) - 1)
                         : static_cast<Int>(value.magnitude);
  }

  // An integer (bytes) or a number with a unit (runtime::parse_byte_size); at least rule.min
  // bytes when that is positive.
  void parse(const std::string& key, const YAML::Node& node, const Rule& rule,
             ByteSize& out) const {
    check_scalar(key, node, "a size such as 512MiB");
    try {
      out = parse_byte_size(node.Scalar());
    } catch (const std::invalid_argument& e) {
      fail_value(key, e.what());
    }
    if (rule.min > 0 && out.bytes < static_cast<uint64_t>(rule.min))
      fail_value(key, "must be at least " + std::to_string(rule.min) + " bytes, got " +
                          node.Scalar());
  }

  // YAML 1.2 core booleans only: true|false (also True/TRUE, False/FALSE).
  void parse(const std::string& key, const YAML::Node& node, const Rule&, bool& out) const {
    check_scalar(key, node, "true or false");
    const std::string& text = node.Scalar();
    if (text == "true" || text == "True" || text == "TRUE") {
      out = true;
    } else if (text == "false" || text == "False" || text == "FALSE") {
      out = false;
    } else {
      fail_value(key, "expected true or false, got '" + text + "'");
    }
  }

  // A finite decimal number (an integer is fine), inside [rule.low, rule.high].
  void parse(const std::string& key, const YAML::Node& node, const Rule& rule,
             double& out) const {
    check_scalar(key, node, "a number");
    const std::string& text = node.Scalar();
    double value = 0;
    const char* begin = text.data();
    const char* end = begin + text.size();
    if (begin != end && *begin == '+') ++begin;
    auto [ptr, ec] = std::from_chars(begin, end, value);
    if (begin == end || ptr != end || ec != std::errc() || !std::isfinite(value))
      fail_value(key, "expected a number, got '" + text + "'");
    if (value < rule.low || value > rule.high) {
      std::ostringstream range;
      range << "between " << rule.low << " and " << rule.high;
      fail_value(key, "must be " + range.str() + ", got " + text);
    }
    out = value;
  }

  // A list, or a single value taken as a one-element list. [] is an error.
  template <typename T>
  void parse(const std::string& key, const YAML::Node& node, const Rule& rule,
             std::vector<T>& out) const {
    Rule element_rule = rule;
    element_rule.required = true;  // no empty strings inside a list
    if (node.IsMap()) fail_value(key, "expected a list, got a map");
    std::vector<T> values;
    if (node.IsScalar()) {
      values.emplace_back();
      parse(key, node, element_rule, values.back());
    } else {
      for (size_t i = 0; i < node.size(); ++i) {
        values.emplace_back();
        parse(key + "[" + std::to_string(i) + "]", node[i], element_rule, values.back());
      }
    }
    if (values.empty()) fail_value(key, "must not be empty");
    if (rule.length != 0 && values.size() != rule.length) {
      fail_value(key, "expected a list of " + std::to_string(rule.length) + " values, got " +
                          std::to_string(values.size()));
    }
    out = std::move(values);
  }

  std::string path_;
  YAML::Node root_;
  std::map<std::string, std::string> origins_;  // key -> the override that last set it
  std::map<std::string, YAML::Node> leaves_;    // schema key -> its node
};

// input.paths: the files its directories and patterns name (io/input_paths.h), logged (on
// rank 0: the others log warnings only) when it named more than files.
void expand_input_paths(Config& config) {
  const std::vector<std::string> globs =
      config.input.glob.empty() ? io::default_input_globs(config.input.format) : config.input.glob;
  io::InputFiles files;
  try {
    files = io::expand_input_paths(config.input.paths, globs);
  } catch (const io::InputError& e) {
    throw ConfigError(config.source + ": input.paths: " + e.what());
  }
  config.input.paths = std::move(files.paths);
  if (files.expanded)
    spdlog::info("input: {} file(s), {:.1f} MB", config.input.paths.size(),
                 static_cast<double>(files.bytes) / 1e6);
}

}  // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  Loader loader(path);
  loader.read_file();
  for (const std::string& text : overrides) loader.apply_override(text);
  Config config;
  config.source = path;
  loader.build(config);
  expand_input_paths(config);
  config.resolved = detail::resolve(config);
  return config;
}

void require(const Config& config, std::initializer_list<std::string_view> keys) {
  Config copy = config;  // bind() hands out non-const pointers
  for (std::string_view key : keys) {
    const Field* field = find_field(std::string(key));
    if (field == nullptr) throw std::logic_error("require: no schema key " + std::string(key));
    const bool empty = std::visit(
        [](auto* target) {
          using T = std::decay_t<decltype(*target)>;
          if constexpr (std::is_same_v<T, std::string> || std::is_same_v<T, std::vector<int>> ||
                        std::is_same_v<T, std::vector<std::string>> ||
                        std::is_same_v<T, std::vector<double>>) {
            return target->empty();
          } else {
            return false;
          }
        },
        field->bind(copy));
    if (empty) throw ConfigError(config.source + ": " + std::string(key) + " is required");
  }
}

std::string closest_match(std::string_view word, const std::vector<std::string>& candidates) {
  constexpr size_t kMaxDistance = 2;
  std::string best;
  size_t best_distance = kMaxDistance + 1;
  for (const std::string& candidate : candidates) {
    const size_t distance = edit_distance(word, candidate);
    if (distance < best_distance) {
      best_distance = distance;
      best = candidate;
    }
  }
  return best;
}

}  // namespace sf::runtime
