// MinHash signatures with datasketch's algorithm: num_perm permutations (a, b) drawn as
// datasketch.MinHash(num_perm, seed) draws them (numpy RandomState(seed), a in [1, p),
// b in [0, p), p = 2^61 - 1, interleaved per permutation); for each shingle hash h (uint64)
// the value ((a*h + b) mod 2^64) mod p, masked to its low 32 bits; the signature is the
// minimum per permutation, 0xffffffff for an empty set -- bit for bit what
// datasketch.MinHash(num_perm, seed, hashfunc=<64-bit hash>).update() computes in numpy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sf::stages::dedup {

class MinHasher {
 public:
  // REQUIRES: num_perm >= 1, seed < 2^32 (numpy's RandomState accepts no more).
  MinHasher(int num_perm, uint32_t seed);

  int num_perm() const { return num_perm_; }
  const std::vector<uint64_t>& a() const { return a_; }
  const std::vector<uint64_t>& b() const { return b_; }

  // Writes num_perm() values for the set of `n` shingle hashes (repeats do not matter).
  // Thread-safe: const, no shared scratch.
  void signature(const uint64_t* hashes, size_t n, uint32_t* out) const;

 private:
  int num_perm_;
  int padded_;  // num_perm rounded up to a multiple of 8 (the SIMD width of the kernel)
  std::vector<uint64_t> a_, b_;
};

// Share of equal values: the MinHash estimate of the Jaccard similarity.
double estimated_jaccard(const uint32_t* x, const uint32_t* y, int num_perm);

}  // namespace sf::stages::dedup
