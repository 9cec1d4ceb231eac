// Prints the configuration reference, markdown rendered from the config schema
// (runtime::config_reference_markdown). docs/configuration.md is its output:
//   build/tools/config_reference > docs/configuration.md
// tests/unit/config_reference_test.cc fails while the two differ.
#include <cstdio>
#include <exception>
#include <string>

#include "runtime/config.h"

int main(int argc, char** argv) {
  if (argc > 1) {
    std::fprintf(stderr, "usage: %s > docs/configuration.md\n", argv[0]);
    return 2;
  }
  try {
    const std::string text = sf::runtime::config_reference_markdown();
    return std::fwrite(text.data(), 1, text.size(), stdout) == text.size() &&
                   std::fflush(stdout) == 0
               ? 0
               : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "config_reference: %s\n", e.what());
    return 1;
  }
}
