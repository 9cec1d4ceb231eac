// Helpers shared by the tests: temp directories and small synthetic data.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <string>
#include <vector>

namespace sf::testing {

// A fresh directory under $TMPDIR, removed (recursively) when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// rows x dim float32 from a Gaussian mixture of `clusters` centres, seeded.
std::vector<float> gaussian_mixture(int64_t rows, int dim, int clusters, uint64_t seed);

// rows x dim float32 on a plane: coordinates 0 and 1 uniform in [0, 10), the others N(0, 0.01^2).
// Low intrinsic dimension: a point's neighbours are local (unlike gaussian_mixture's).
std::vector<float> plane_rows(int64_t rows, int dim, uint64_t seed);

// Exact k nearest rows of x (rows of d floats) for each query in q, computed in double;
// ties go to the smaller id. L2, or the largest inner product.
std::vector<int64_t> brute_force(const std::vector<float>& x, int d, const std::vector<float>& q,
                                 int k, bool inner_product);

// The message of the exception of type E that `work` throws, or "" when it throws none (an
// exception of another type propagates and fails the test).
template <typename E = std::exception>
std::string error_of(const std::function<void()>& work) {
  try {
    work();
  } catch (const E& e) {
    return e.what();
  }
  return "";
}

// tests/data: the real sample data shipped with the tests (tests/data/README.md).
std::string data_dir();

}  // namespace sf::testing
