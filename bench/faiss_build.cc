// The peer in C++: build an index with stock FAISS in one process, as bench/py_build.py does
// from Python — for machines without python3-faiss (e.g. the lent 16-core device machine).
//
// usage: faiss_build DATA.fvecs FACTORY l2|ip OUT.faiss
// Reads the whole corpus, trains on it (FAISS subsamples to 256 x nlist itself), adds it,
// writes the index. Threads: OMP_NUM_THREADS. Prints one JSON line with the phase times.
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// fvecs: per row an int32 dimension, then that many float32 values.
std::vector<float> read_fvecs(const std::string& path, int& dim, int64_t& rows) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw std::runtime_error("cannot open " + path);
  const auto bytes = static_cast<int64_t>(in.tellg());
  in.seekg(0);
  int32_t d = 0;
  if (!in.read(reinterpret_cast<char*>(&d), 4) || d <= 0)
    throw std::runtime_error(path + ": not an fvecs file");
  const int64_t row_bytes = 4 + 4 * int64_t{d};
  if (bytes % row_bytes != 0) throw std::runtime_error(path + ": truncated fvecs file");
  dim = d;
  rows = bytes / row_bytes;
  std::vector<float> data(static_cast<size_t>(rows) * d);
  in.seekg(0);
  std::vector<char> row(static_cast<size_t>(row_bytes));
  for (int64_t i = 0; i < rows; ++i) {
    in.read(row.data(), row_bytes);
    std::copy_n(reinterpret_cast<const float*>(row.data() + 4), d, data.data() + i * d);
  }
  if (!in) throw std::runtime_error(path + ": read failed");
  return data;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: faiss_build DATA.fvecs FACTORY l2|ip OUT.faiss\n");
    return 2;
  }
  try {
    auto t0 = std::chrono::steady_clock::now();
    int dim = 0;
    int64_t rows = 0;
    std::vector<float> x = read_fvecs(argv[1], dim, rows);
    const double read_s = seconds_since(t0);
    const faiss::MetricType metric =
        std::string(argv[3]) == "ip" ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
    auto t1 = std::chrono::steady_clock::now();
    std::unique_ptr<faiss::Index> index(faiss::index_factory(dim, argv[2], metric));
    index->train(rows, x.data());
    const double train_s = seconds_since(t1);
    auto t2 = std::chrono::steady_clock::now();
    index->add(rows, x.data());
    const double add_s = seconds_since(t2);
    auto t3 = std::chrono::steady_clock::now();
    faiss::write_index(index.get(), argv[4]);
    const double write_s = seconds_since(t3);
    std::printf("{\"read\": %.3f, \"train\": %.3f, \"add\": %.3f, \"write\": %.3f, \"total\": %.3f}\n",
                read_s, train_s, add_s, write_s, seconds_since(t0));
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "faiss_build: %s\n", e.what());
    return 1;
  }
}
