// docs/configuration.md is generated from the config schema (runtime/config.cc): it must equal
// runtime::config_reference_markdown(), so that the reference cannot go stale.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "runtime/config.h"

#ifndef SF_SOURCE_DIR
#error "SF_SOURCE_DIR (the source tree) is set by tests/CMakeLists.txt"
#endif

namespace {

constexpr const char* kRegenerate =
    "regenerate it: cmake --build build --target config_reference && "
    "build/tools/config_reference > docs/configuration.md";

// The 1-based line where `a` and `b` first differ, with both lines.
std::string first_difference(const std::string& a, const std::string& b) {
  std::istringstream in_a(a), in_b(b);
  std::string line_a, line_b;
  for (int line = 1;; ++line) {
    const bool more_a = static_cast<bool>(std::getline(in_a, line_a));
    const bool more_b = static_cast<bool>(std::getline(in_b, line_b));
    if (!more_a && !more_b) return "they differ only in the final newline";
    if (!more_a || !more_b || line_a != line_b) {
      return "first difference at line " + std::to_string(line) +
             ":\n  file:      " + (more_a ? line_a : "(end of file)") +
             "\n  generated: " + (more_b ? line_b : "(end of text)");
    }
  }
}

TEST(ConfigReference, DocMatchesTheSchema) {
  const std::string path = std::string(SF_SOURCE_DIR) + "/docs/configuration.md";
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << path << " is missing; " << kRegenerate;
  std::ostringstream file;
  file << in.rdbuf();
  const std::string generated = sf::runtime::config_reference_markdown();
  EXPECT_TRUE(file.str() == generated)
      << path << " differs from the config schema (runtime/config.cc); " << kRegenerate << "\n"
      << first_difference(file.str(), generated);
}

TEST(ConfigReference, ListsEveryKeyWithItsDefault) {
  const std::string text = sf::runtime::config_reference_markdown();
  // A sample of rows, one per kind of value.
  for (const char* row : {
           "| `input.paths` | list of strings | required |",
           "| `input.format` | one of `auto`, `hdf5`, `fvecs`, `bvecs`, `npy`, `idx`, `jsonl`, "
           "`fortune` | `auto` |",
           "| `index.factory` | string | `\"\"` |",
           "| `output.piece_rows` | integer ≥ 1 | `65536` |",
           "| `eval.nprobe` | list of integers ≥ 1 | `[1, 8, 32]` |",
           "| `dedup.threshold` | number in [0.01, 0.99] | `0.8` |",
           "| `dedup.near` | `true` or `false` | `true` |",
           "| `partition.scan_cost` | list of 2 numbers in [0, 1e9] | none |",
           "| `seed` | integer ≥ 0 | `1234` |",
           "| `slurm.account` | string | `\"\"` |",
       }) {
    EXPECT_NE(text.find(row), std::string::npos) << "no row starting " << row;
  }
}

}  // namespace
