#include "stages/dedup/minhash.h"

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>

namespace sf::stages::dedup {
namespace {

constexpr uint64_t kMersenne61 = (uint64_t{1} << 61) - 1;
constexpr uint64_t kMaxHash = 0xffffffffu;

// numpy's legacy RandomState.randint(low, high, dtype=uint64) for high - low - 1 > 2^32:
// masked rejection sampling on 64-bit draws, each draw two MT19937 outputs (high word first).
// std::mt19937 seeded with an integer is numpy's mt19937_seed (init_genrand).
uint64_t numpy_randint_u64(std::mt19937& mt, uint64_t low, uint64_t high) {
  const uint64_t rng = high - low - 1;
  uint64_t mask = rng;
  for (int shift = 1; shift < 64; shift <<= 1) mask |= mask >> shift;
  while (true) {
    const uint64_t hi = mt(), lo = mt();
    const uint64_t v = ((hi << 32) | lo) & mask;
    if (v <= rng) return low + v;
  }
}

// ((a*h + b) mod 2^64 mod p) & 0xffffffff. The kernel's j loops vectorise (8 lanes of uint64
// with AVX-512, 4 with AVX2); the clones pick the best the CPU has at run time.
inline uint64_t permuted(uint64_t a, uint64_t b, uint64_t h) {
  uint64_t v = a * h + b;             // mod 2^64, as numpy's uint64
  v = (v & kMersenne61) + (v >> 61);  // < p + 8, congruent mod p
  const uint64_t reduced = v - kMersenne61;
  return std::min(v, reduced) & kMaxHash;  // v < p: reduced wraps above v; else it is v - p
}

__attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"))) void minhash_kernel(
    const uint64_t* __restrict a, const uint64_t* __restrict b, int padded,
    const uint64_t* __restrict hashes, size_t n, uint64_t* __restrict acc) {
  size_t i = 0;
  // Four hashes per pass over the permutations: a quarter of the loads and stores of acc.
  for (; i + 4 <= n; i += 4) {
    const uint64_t h0 = hashes[i], h1 = hashes[i + 1], h2 = hashes[i + 2], h3 = hashes[i + 3];
    for (int j = 0; j < padded; ++j) {
      const uint64_t m01 = std::min(permuted(a[j], b[j], h0), permuted(a[j], b[j], h1));
      const uint64_t m23 = std::min(permuted(a[j], b[j], h2), permuted(a[j], b[j], h3));
      acc[j] = std::min(acc[j], std::min(m01, m23));
    }
  }
  for (; i < n; ++i) {
    const uint64_t h = hashes[i];
    for (int j = 0; j < padded; ++j) acc[j] = std::min(acc[j], permuted(a[j], b[j], h));
  }
}

}  // namespace

MinHasher::MinHasher(int num_perm, uint32_t seed)
    : num_perm_(num_perm), padded_((num_perm + 7) / 8 * 8) {
  if (num_perm < 1)
    throw std::invalid_argument("num_perm must be >= 1, got " + std::to_string(num_perm));
  std::mt19937 mt(seed);
  a_.assign(static_cast<size_t>(padded_), 0);
  b_.assign(static_cast<size_t>(padded_), 0);
  for (int j = 0; j < num_perm; ++j) {
    a_[static_cast<size_t>(j)] = numpy_randint_u64(mt, 1, kMersenne61);
    b_[static_cast<size_t>(j)] = numpy_randint_u64(mt, 0, kMersenne61);
  }
}

void MinHasher::signature(const uint64_t* hashes, size_t n, uint32_t* out) const {
  alignas(64) uint64_t acc[1024];
  std::vector<uint64_t> big;
  uint64_t* accp = acc;
  if (padded_ > 1024) {
    big.resize(static_cast<size_t>(padded_));
    accp = big.data();
  }
  std::fill(accp, accp + padded_, kMaxHash);
  minhash_kernel(a_.data(), b_.data(), padded_, hashes, n, accp);
  for (int j = 0; j < num_perm_; ++j) out[j] = static_cast<uint32_t>(accp[j]);
}

double estimated_jaccard(const uint32_t* x, const uint32_t* y, int num_perm) {
  int equal = 0;
  for (int j = 0; j < num_perm; ++j) equal += x[j] == y[j];
  return num_perm > 0 ? static_cast<double>(equal) / num_perm : 0.0;
}

}  // namespace sf::stages::dedup
