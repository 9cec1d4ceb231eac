#include "tests/test_util.h"

#include <cstdlib>
#include <algorithm>
#include <filesystem>
#include <random>
#include <stdexcept>

namespace sf::testing {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base ? base : "/tmp") + "/sf_test_XXXXXX";
  std::vector<char> buf(pattern.begin(), pattern.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::vector<float> gaussian_mixture(int64_t rows, int dim, int clusters, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> centres(static_cast<size_t>(clusters) * dim);
  for (auto& c : centres) c = 4.0f * normal(rng);
  std::vector<float> out(static_cast<size_t>(rows) * dim);
  std::uniform_int_distribution<int> pick(0, clusters - 1);
  for (int64_t i = 0; i < rows; ++i) {
    const float* c = &centres[static_cast<size_t>(pick(rng)) * dim];
    for (int j = 0; j < dim; ++j) out[i * dim + j] = c[j] + normal(rng);
  }
  return out;
}

std::vector<float> plane_rows(int64_t rows, int dim, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<float> u(0.0f, 10.0f);
  std::normal_distribution<float> flat(0.0f, 0.01f);
  std::vector<float> out(static_cast<size_t>(rows) * dim);
  for (int64_t i = 0; i < rows; ++i)
    for (int j = 0; j < dim; ++j) out[i * dim + j] = j < 2 ? u(rng) : flat(rng);
  return out;
}

std::vector<int64_t> brute_force(const std::vector<float>& x, int d, const std::vector<float>& q,
                                 int k, bool inner_product) {
  const int64_t n = static_cast<int64_t>(x.size()) / d;
  const int64_t nq = static_cast<int64_t>(q.size()) / d;
  std::vector<int64_t> out;
  std::vector<std::pair<double, int64_t>> scored(static_cast<size_t>(n));
  for (int64_t i = 0; i < nq; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int t = 0; t < d; ++t) {
        const double a = q[i * d + t], b = x[j * d + t];
        s += inner_product ? -a * b : (a - b) * (a - b);
      }
      scored[j] = {s, j};
    }
    std::partial_sort(scored.begin(), scored.begin() + k, scored.end());
    for (int t = 0; t < k; ++t) out.push_back(scored[t].second);
  }
  return out;
}

std::string data_dir() {
#ifdef SF_DATA_DIR
  return SF_DATA_DIR;
#else
  return "tests/data";
#endif
}

}  // namespace sf::testing
