// The configuration reference (docs/configuration.md), rendered from the schema rows.
#include <cmath>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "runtime/config.h"
#include "runtime/config_schema.h"

namespace sf::runtime {
namespace {

using detail::Field;
using detail::kNoMax;
using detail::kNoMin;
using detail::Rule;
using detail::schema;
using detail::Target;

// A number as a reader writes it: 0.01, 2, 1e9.
std::string number_text(double value) {
  std::ostringstream out;
  out << value;
  std::string text = out.str();
  for (const char* from : {"e+0", "e+"}) {
    const size_t at = text.find(from);
    if (at != std::string::npos) {
      text.replace(at, std::strlen(from), "e");
      break;
    }
  }
  return text;
}

// "integer ≥ 1", "integer in 1…1024", "number in [0.01, 0.99]", "one of `a`, `b`", ...
template <typename T>
std::string value_type(const Rule& rule) {
  if constexpr (std::is_same_v<T, std::string>) {
    if (rule.choices.empty()) return "string";
    std::string out = "one of ";
    for (size_t i = 0; i < rule.choices.size(); ++i)
      out += (i == 0 ? "`" : ", `") + std::string(rule.choices[i]) + "`";
    return out;
  } else if constexpr (std::is_same_v<T, bool>) {
    return "`true` or `false`";
  } else if constexpr (std::is_same_v<T, ByteSize>) {
    return "size (`512MiB`, `2GiB`, bytes)";
  } else if constexpr (std::is_integral_v<T>) {
    if (rule.max != kNoMax)
      return "integer in " + std::to_string(rule.min) + "…" + std::to_string(rule.max);
    if (rule.min != kNoMin) return "integer ≥ " + std::to_string(rule.min);
    return "integer";
  } else if constexpr (std::is_floating_point_v<T>) {
    if (std::isfinite(rule.low) && std::isfinite(rule.high))
      return "number in [" + number_text(rule.low) + ", " + number_text(rule.high) + "]";
    if (std::isfinite(rule.low)) return "number ≥ " + number_text(rule.low);
    return "number";
  } else {
    using Element = typename T::value_type;
    std::string element = value_type<Element>(rule);
    if constexpr (std::is_same_v<Element, std::string>) {
      element = "strings";
    } else {  // "integer ≥ 1" -> "integers ≥ 1"
      element.insert(element.find(' ') == std::string::npos ? element.size() : element.find(' '),
                     "s");
    }
    return "list of " + (rule.length != 0 ? std::to_string(rule.length) + " " : std::string()) +
           element;
  }
}

// A default value as it is written in YAML, in a code span; "required" or "none" without one.
std::string default_text(const Field& field, const YAML::Node& value) {
  if (field.rule.required) return "required";
  if (value.IsNull()) return "none";
  YAML::Emitter out;
  out << value;
  return "`" + std::string(out.c_str()) + "`";
}

// A table cell: `|` would end it.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

struct Section {
  std::string_view name;   // the key's first part; "" for top-level keys
  std::string_view title;  // the heading
  std::string_view intro;  // markdown, may be empty
};

const Section kSections[] = {
    {"input", "input",
     "The corpus: vector files for `build` (and `eval`), text files for `dedup` and `run`."},
    {"index", "index", "The FAISS IVF index that `build` and `run` train and fill."},
    {"resources", "resources",
     "What a rank may use: see [memory budget](run-directory.md#memory-budget)."},
    {"", "Top-level keys", ""},
    {"output", "output", ""},
    {"eval", "eval", "`eval`, and `run` with `run.eval: true`."},
    {"dedup", "dedup", "`dedup`, and the dedup step of `run`: see [dedup.md](dedup.md)."},
    {"partition", "partition",
     "`build`: workload-aware list sizes and the sharded layout that `search` serves: see "
     "[partitioning-and-search.md](partitioning-and-search.md)."},
    {"search", "search", "`search` over the sharded layout."},
    {"run", "run",
     "`shardforge run`: which of its stages run (reading and embedding always do): see "
     "[text-to-index.md](text-to-index.md)."},
    {"embed", "embed", "`run`: the embedder."},
    {"semdedup", "semdedup", "`run`: semantic dedup inside the inverted lists."},
    {"slurm", "slurm",
     "Defaults for the flags of `shardforge submit` (its flags win): see [slurm.md](slurm.md)."},
};

const Section& section_of(std::string_view key) {
  const size_t dot = key.find('.');
  const std::string_view name = dot == std::string_view::npos ? "" : key.substr(0, dot);
  for (const Section& section : kSections)
    if (section.name == name) return section;
  throw std::logic_error("config_reference_markdown: no section for key " + std::string(key));
}

}  // namespace

std::string config_reference_markdown() {
  std::string out =
      "# Configuration reference\n"
      "\n"
      "<!-- Generated from the schema in runtime/config.cc; do not edit. Regenerate with\n"
      "     cmake --build build --target config_reference && "
      "build/tools/config_reference > docs/configuration.md\n"
      "     (the unit test ConfigReference.DocMatchesTheSchema fails while it differs). -->\n"
      "\n"
      "Every command reads one YAML file, then applies each `--set key=value` in order (dotted "
      "keys, YAML values: `--set index.factory=IVF4096,PQ32np --set \"eval.nprobe=[1,8,32]\"`). "
      "Every key is listed below. An unknown key (with a \"did you mean\" hint), a key repeated "
      "in the file or in one `--set`, a wrong type or a value out of range is an error that "
      "names the key and the file (and the `--set` that set it), exit code 2, before anything "
      "is changed. Relative paths are relative to the working directory. A list key also takes "
      "a single value (a one-element list); `[]` is an error. Each command writes the effective "
      "configuration (file, overrides and defaults) to `config.yaml` in its run directory.\n"
      "\n"
      "Input and output file formats: [run-directory.md](run-directory.md). Which keys each "
      "stage's checkpoint depends on: "
      "[checkpoints-and-faults.md](checkpoints-and-faults.md#checkpoints).\n";
  Config defaults;
  const Section* current = nullptr;
  for (const Field& field : schema()) {
    if (field.doc.empty())
      throw std::logic_error("config_reference_markdown: schema key " + std::string(field.key) +
                             " has no description");
    const Section& section = section_of(field.key);
    if (&section != current) {
      current = &section;
      out += "\n## " + std::string(section.title) + "\n\n";
      if (!section.intro.empty()) out += std::string(section.intro) + "\n\n";
      out += "| key | type | default | meaning |\n|---|---|---|---|\n";
    }
    const Target target = field.bind(defaults);
    const std::string type = std::visit(
        [&](auto* value) { return value_type<std::decay_t<decltype(*value)>>(field.rule); },
        target);
    const YAML::Node value = detail::value_node(target);
    out += "| `" + std::string(field.key) + "` | " + cell(type) + " | " +
           cell(default_text(field, value)) + " | " + cell(field.doc) + " |\n";
  }
  return out;
}

}  // namespace sf::runtime
