// How a stage reports progress of a long step; the pipeline decides where it goes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace sf::stages {

// Called with (step name, units done, units total). May be empty. Local, never collective.
using ProgressFn = std::function<void(const std::string&, int64_t, int64_t)>;

// A step counted in bytes names its unit last, "read+sketch: bytes": the log and `shardforge
// status` then print sizes and MiB/s instead of units.
inline bool counts_bytes(const std::string& step) {
  constexpr std::string_view kUnit = ": bytes";
  return step.size() >= kUnit.size() &&
         step.compare(step.size() - kUnit.size(), kUnit.size(), kUnit) == 0;
}

inline void report(const ProgressFn& progress, const std::string& step, int64_t done,
                   int64_t total) {
  if (progress) progress(step, done, total);
}

}  // namespace sf::stages
