// mix64: splitmix64's finaliser, a fast and well-mixed 64-bit hash of a 64-bit value (for
// routing keys to ranks and for feature hashing). Header only; no state.
#pragma once

#include <cstdint>

namespace sf::stages {

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

}  // namespace sf::stages
