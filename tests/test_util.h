// Helpers shared by the tests: temp directories and small synthetic data.
#pragma once

#include <cstdint>
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

// Directory of ../shared/data (real sample data).
std::string data_dir();

}  // namespace sf::testing
