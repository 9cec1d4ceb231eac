// How a stage reports progress of a long step; the pipeline decides where it goes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace sf::stages {

// Called with (step name, units done, units total). May be empty. Local, never collective.
using ProgressFn = std::function<void(const std::string&, int64_t, int64_t)>;

inline void report(const ProgressFn& progress, const std::string& step, int64_t done,
                   int64_t total) {
  if (progress) progress(step, done, total);
}

}  // namespace sf::stages
