// Single-core throughput of the dedup's per-document work, step by step, on real or generated
// text: MB/s of text (the text field's bytes) for normalisation, shingling (XXH3 of 5-grams)
// and MinHash signatures (datasketch's algorithm), each alone and all together.
//   build/bench/dedup_sketch_bench FILE... [--format jsonl|fortune] [--num-perm 112]
//                                          [--ngram 5] [--repeat N] [--dump N]
// Reads the files with io/text_corpus (not timed), then times each step over all texts: the
// thread's CPU time, best of --repeat passes (default 3).
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "io/text_corpus.h"
#include "stages/dedup/minhash.h"
#include "stages/dedup/text.h"

namespace dd = sf::stages::dedup;

int main(int argc, char** argv) {
  std::vector<std::string> paths;
  sf::io::TextReadOptions read;
  int num_perm = 112, ngram = 5, repeat = 3;
  int dump = 0;  // --dump N: print the first N texts' signatures as JSON lines and stop
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--format" && i + 1 < argc)
      read.format = sf::io::parse_text_format(argv[++i]);
    else if (arg == "--num-perm" && i + 1 < argc)
      num_perm = std::atoi(argv[++i]);
    else if (arg == "--ngram" && i + 1 < argc)
      ngram = std::atoi(argv[++i]);
    else if (arg == "--repeat" && i + 1 < argc)
      repeat = std::atoi(argv[++i]);
    else if (arg == "--dump" && i + 1 < argc)
      dump = std::atoi(argv[++i]);
    else
      paths.push_back(arg);
  }
  if (paths.empty()) {
    std::fprintf(
        stderr,
        "usage: %s FILE... [--format jsonl|fortune] [--num-perm N] [--ngram N] [--repeat N]\n",
        argv[0]);
    return 2;
  }
  std::vector<std::string> texts;
  double bytes = 0;
  const auto files = sf::io::stat_text_files(paths);
  for (const auto& piece : sf::io::plan_text_pieces(files, read.format, 0, 1))
    sf::io::read_text_piece(
        files[piece.file], piece, read,
        [&](const sf::io::TextRecord& r) {
          texts.emplace_back(r.text);
          bytes += static_cast<double>(r.text.size());
        },
        [](const sf::io::BadRecord&) {});
  const dd::MinHasher minhash(num_perm, 1);
  const dd::NormaliseOptions norm;
  if (dump > 0) {  // for cross-checks against a Python reference (seed 1)
    std::string n;
    std::vector<uint64_t> h;
    std::vector<uint32_t> s(static_cast<size_t>(num_perm));
    for (size_t i = 0; i < texts.size() && i < static_cast<size_t>(dump); ++i) {
      dd::normalise_text(texts[i], norm, n);
      h.clear();
      dd::shingle_hashes(n, ngram, h);
      minhash.signature(h.data(), h.size(), s.data());
      std::printf("[");
      for (int j = 0; j < num_perm; ++j) std::printf(j ? ", %u" : "%u", s[static_cast<size_t>(j)]);
      std::printf("]\n");
    }
    return 0;
  }
  std::vector<std::string> normalised(texts.size());
  std::vector<std::vector<uint64_t>> shingles(texts.size());
  std::vector<uint32_t> sig(static_cast<size_t>(num_perm));
  double total_shingles = 0;
  for (auto& s : shingles) s.reserve(64);

  // CPU time of this thread: on a shared machine, time spent descheduled does not count.
  auto cpu_seconds = [] {
    timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  };
  auto best_of = [&](auto&& step) {
    double best = 1e300;
    for (int r = 0; r < repeat; ++r) {
      const double t0 = cpu_seconds();
      step();
      best = std::min(best, cpu_seconds() - t0);
    }
    return best;
  };
  const double t_norm = best_of([&] {
    for (size_t i = 0; i < texts.size(); ++i) dd::normalise_text(texts[i], norm, normalised[i]);
  });
  const double t_shingle = best_of([&] {
    total_shingles = 0;
    for (size_t i = 0; i < texts.size(); ++i) {
      shingles[i].clear();
      dd::shingle_hashes(normalised[i], ngram, shingles[i]);
      total_shingles += static_cast<double>(shingles[i].size());
    }
  });
  const double t_minhash = best_of([&] {
    for (size_t i = 0; i < texts.size(); ++i)
      minhash.signature(shingles[i].data(), shingles[i].size(), sig.data());
  });
  std::string scratch;
  std::vector<uint64_t> hashes;
  const double t_all = best_of([&] {
    for (const auto& text : texts) {
      dd::normalise_text(text, norm, scratch);
      (void)dd::exact_hash(scratch);
      hashes.clear();
      dd::shingle_hashes(scratch, ngram, hashes);
      minhash.signature(hashes.data(), hashes.size(), sig.data());
    }
  });
  const double mb = bytes / 1e6;
  std::printf(
      "%zu texts, %.1f MB of text, %.0f shingles (%.1f bytes of text per shingle), num_perm %d, 1 "
      "core\n",
      texts.size(), mb, total_shingles, bytes / std::max(1.0, total_shingles), num_perm);
  std::printf("  normalise          %8.1f MB/s\n", mb / t_norm);
  std::printf("  shingle + XXH3     %8.1f MB/s  (%.1f M shingles/s)\n", mb / t_shingle,
              total_shingles / t_shingle / 1e6);
  std::printf("  MinHash            %8.1f MB/s  (%.1f M shingles/s)\n", mb / t_minhash,
              total_shingles / t_minhash / 1e6);
  std::printf("  all (signature)    %8.1f MB/s\n", mb / t_all);
  return 0;
}
