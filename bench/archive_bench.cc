// Boost.Serialization binary archives (cluster/archive.h) against the raw buffers they would
// replace, on realistic sizes; the figures behind the comments in pipeline/dedup_read.cc
// (write_sketch_file) and stages/dedup/clusters.cc / cluster/bytes.h (shuffles stay raw).
//   build/bench/archive_bench [--docs 100000] [--repeat 3] [--dir /tmp]
// 1. The dedup sketch checkpoint of --docs synthetic documents (14 x 8 = 112 MinHash values
//    and ~60 exact shingles each, ids, hashes, line numbers): write + read of the file as
//    written today (fields as one archive, signatures and shingle sets as array sections) and
//    with everything in the one archive.
// 2. Shuffle messages, packed and unpacked (the alltoallv between is the same bytes either
//    way): --docs x 14 band records of three uint64 (stages/dedup/clusters.cc's BucketPart)
//    and --docs rows of 384 floats (commands/run_job.cc's embedded vectors), raw memcpy as
//    cluster::exchange does against to_bytes/from_bytes.
// Wall time, best of --repeat.
#include <boost/serialization/is_bitwise_serializable.hpp>
#include <boost/serialization/vector.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "cluster/archive.h"
#include "io/array_file.h"
#include "pipeline/text_dedup.h"

namespace {

using sf::cluster::Bytes;

double best_seconds(int repeat, const std::function<void()>& f) {
  double best = 1e30;
  for (int i = 0; i < repeat; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

sf::stages::dedup::LocalCorpus synthetic_sketch(int64_t docs) {
  std::mt19937_64 rng(42);
  sf::stages::dedup::LocalCorpus c;
  c.pieces = {sf::io::TextPiece{0, 0, 0, true}};
  c.piece_lines = {docs};
  c.piece_docs = {0, docs};
  for (int64_t i = 0; i < docs; ++i) {
    c.keep_score.push_back(static_cast<double>(rng() % 1000));
    c.hashes.push_back({rng(), rng()});
    c.slot.push_back(static_cast<int32_t>(i));
    c.raw_bytes.push_back(static_cast<uint32_t>(200 + rng() % 400));
    c.doc_line.push_back(i);
    c.ids.push_back("\"doc-" + std::to_string(i) + "\"");
    std::vector<uint64_t> set(40 + rng() % 40);
    for (auto& v : set) v = rng();
    c.shingle_sets.push_back(std::move(set));
  }
  c.signatures.resize(static_cast<size_t>(docs) * 112);
  for (auto& v : c.signatures) v = static_cast<uint32_t>(rng());
  c.slots = docs;
  return c;
}

// The alternative layout: the whole sketch, bulk arrays included, as one archive.
struct WholeSketch {
  sf::stages::dedup::LocalCorpus& c;
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar & c.piece_lines & c.piece_docs & c.keep_score & c.raw_bytes & c.doc_line & c.ids;
    ar & c.slot & c.slots & c.hashes & c.signatures & c.shingle_sets;
  }
};

struct BucketPart {
  uint64_t key, min_row, count;
  template <class Ar>
  void serialize(Ar& ar, unsigned) {
    ar & key & min_row & count;
  }
};

}  // namespace

BOOST_IS_BITWISE_SERIALIZABLE(sf::stages::dedup::Hash128)  // as pipeline/dedup_read.cc

int main(int argc, char** argv) {
  int64_t docs = 100000;
  int repeat = 3;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    if (arg == "--docs") docs = std::atoll(argv[i + 1]);
    else if (arg == "--repeat") repeat = std::atoi(argv[i + 1]);
    else if (arg == "--dir") dir = argv[i + 1];
    else { std::fprintf(stderr, "unknown option %s\n", argv[i]); return 2; }
  }
  const std::string path = dir + "/archive_bench_sketch.sfar";
  sf::stages::dedup::LocalCorpus corpus = synthetic_sketch(docs);

  // 1. The sketch file.
  const double write_today = best_seconds(repeat, [&] { sf::pipeline::write_sketch_file(path, corpus); });
  const auto today_bytes = std::filesystem::file_size(path);
  const double read_today = best_seconds(repeat, [&] {
    sf::stages::dedup::LocalCorpus back;
    back.pieces = corpus.pieces;
    sf::pipeline::read_sketch_file(path, back, true);
  });
  const double write_whole = best_seconds(repeat, [&] {
    sf::io::ArrayFileWriter out(path, "bench-sketch", 1);
    out.write("sketch", sf::cluster::to_bytes(WholeSketch{corpus}));
    out.close();
  });
  const auto whole_bytes = std::filesystem::file_size(path);
  const double read_whole = best_seconds(repeat, [&] {
    sf::io::ArrayFileReader in(path, "bench-sketch", 1);
    const auto bytes = in.read<char>("sketch");
    in.close();
    sf::stages::dedup::LocalCorpus back;
    WholeSketch into{back};
    sf::cluster::from_bytes_into(bytes, into, path);
  });
  std::filesystem::remove(path);
  std::printf("sketch file, %lld docs: bulk as arrays (today) write %.3f s read %.3f s (%.1f MB); "
              "all in one archive write %.3f s read %.3f s (%.1f MB)\n",
              static_cast<long long>(docs), write_today, read_today, today_bytes / 1e6, write_whole,
              read_whole, whole_bytes / 1e6);

  // 2. Shuffle messages.
  std::vector<BucketPart> parts(static_cast<size_t>(docs) * 14);
  for (size_t i = 0; i < parts.size(); ++i) parts[i] = {i * 0x9E3779B97F4A7C15ULL, i, 1 + i % 3};
  const double raw_parts = best_seconds(repeat, [&] {
    Bytes b(parts.size() * sizeof(BucketPart));
    std::memcpy(b.data(), parts.data(), b.size());
    std::vector<BucketPart> back(b.size() / sizeof(BucketPart));
    std::memcpy(back.data(), b.data(), b.size());
  });
  const double boost_parts = best_seconds(repeat, [&] {
    const Bytes b = sf::cluster::to_bytes(parts);
    const auto back = sf::cluster::from_bytes<std::vector<BucketPart>>(b, "parts");
  });
  std::vector<float> rows(static_cast<size_t>(docs) * 384);
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<float>(i % 1000) * 0.001f;
  const double raw_rows = best_seconds(repeat, [&] {
    Bytes b(rows.size() * sizeof(float));
    std::memcpy(b.data(), rows.data(), b.size());
    std::vector<float> back(rows.size());
    std::memcpy(back.data(), b.data(), b.size());
  });
  const double boost_rows = best_seconds(repeat, [&] {
    const Bytes b = sf::cluster::to_bytes(rows);
    const auto back = sf::cluster::from_bytes<std::vector<float>>(b, "rows");
  });
  std::printf("band records, %zu x 24 B: raw %.3f s, Boost %.3f s (%.1fx)\n", parts.size(),
              raw_parts, boost_parts, boost_parts / raw_parts);
  std::printf("float rows, %lld x 384: raw %.3f s, Boost %.3f s (%.1fx)\n",
              static_cast<long long>(docs), raw_rows, boost_rows, boost_rows / raw_rows);
  return 0;
}
