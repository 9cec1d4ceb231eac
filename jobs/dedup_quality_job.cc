// `shardforge dedup-quality`: exact all-pairs Jaccard against the clusters of a dedup run.
// See jobs/dedup.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "io/atomic_file.h"
#include "jobs/dedup.h"

namespace sf::jobs {
namespace {

namespace dd = stages::dedup;

constexpr double kReportedJaccard = 0.3;  // pairs at or above this go to quality_pairs.jsonl

struct UnionFind {
  std::vector<int64_t> parent;
  explicit UnionFind(int64_t n) : parent(static_cast<size_t>(n)) {
    std::iota(parent.begin(), parent.end(), 0);
  }
  int64_t find(int64_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
  }
  void join(int64_t a, int64_t b) {
    a = find(a);
    b = find(b);
    if (a != b) parent[std::max(a, b)] = std::min(a, b);
  }
};

// Exact Jaccard of two sorted sets; two empty sets: 1.
double jaccard(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  if (a.empty() && b.empty()) return 1.0;
  size_t i = 0, j = 0, inter = 0;
  while (i < a.size() && j < b.size()) {
    if (a[i] < b[j])
      ++i;
    else if (b[j] < a[i])
      ++j;
    else
      ++inter, ++i, ++j;
  }
  return static_cast<double>(inter) / static_cast<double>(a.size() + b.size() - inter);
}

uint64_t pair_key(int64_t a, int64_t b) {
  if (a > b) std::swap(a, b);
  return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b);
}

void quality(const pipeline::Config& config) {
  const KeepPolicy keep = parse_keep_policy(config);
  const io::TextReadOptions read = dedup_read_options(config, keep);
  const dd::NormaliseOptions norm = dedup_normalise_options(config);
  const double threshold = config.dedup.threshold;
  const std::string& dir = config.output.dir;

  // The corpus, as one rank reads it: ids and shingle sets in row order.
  std::vector<std::string> ids;
  std::vector<std::vector<uint64_t>> sets;
  const auto files = io::stat_text_files(config.input.paths);
  std::string normalised;
  for (const io::TextPiece& piece : io::plan_text_pieces(files, read.format, 0, 1))
    io::read_text_piece(
        files[piece.file], piece, read,
        [&](const io::TextRecord& rec) {
          // The id as nlohmann writes it, as duplicates.jsonl's ids are read back below.
          ids.push_back(rec.id.empty() ? std::to_string(ids.size())
                                       : nlohmann::json::parse(rec.id).dump());
          dd::normalise_text(rec.text, norm, normalised);
          std::vector<uint64_t> s;
          dd::shingle_hashes(normalised, config.dedup.ngram, s);
          std::sort(s.begin(), s.end());
          s.erase(std::unique(s.begin(), s.end()), s.end());
          sets.push_back(std::move(s));
        },
        [](const io::BadRecord&) {});
  const auto n = static_cast<int64_t>(ids.size());
  if (n >= (int64_t{1} << 31))
    throw io::InputError("dedup-quality: corpus too large for all pairs");
  std::unordered_map<std::string, int64_t> row_of;
  for (int64_t i = 0; i < n; ++i)
    if (!row_of.emplace(ids[i], i).second)
      throw io::InputError("dedup-quality: id " + ids[i] + " occurs twice; ids must be unique");

  // The clusters of the dedup run.
  const std::string dup_path = dir + "/duplicates.jsonl";
  std::ifstream dup(dup_path);
  if (!dup) throw io::InputError(dup_path + ": cannot open (run `shardforge dedup` first)");
  UnionFind clusters(n);
  std::string line;
  int64_t lineno = 0;
  auto row = [&](const nlohmann::json& id) {
    auto it = row_of.find(id.dump());
    if (it == row_of.end())
      throw io::InputError(dup_path + ":" + std::to_string(lineno) + ": id " + id.dump() +
                           " is not in the corpus (was dedup run on this config?)");
    return it->second;
  };
  int64_t removed = 0, removed_true = 0;  // duplicates.jsonl lines; those with J >= threshold
  while (std::getline(dup, line)) {
    ++lineno;
    const auto j = nlohmann::json::parse(line);
    const int64_t r = row(j.at("id")), rep = row(j.at("representative"));
    clusters.join(r, row(j.at("cluster")));
    clusters.join(r, rep);
    ++removed;
    removed_true += jaccard(sets[r], sets[rep]) >= threshold;
  }
  std::unordered_map<int64_t, std::vector<int64_t>> members;
  for (int64_t i = 0; i < n; ++i) members[clusters.find(i)].push_back(i);
  std::unordered_set<uint64_t> detected;
  for (const auto& [root, m] : members)
    for (size_t a = 0; a < m.size(); ++a)
      for (size_t b = a + 1; b < m.size(); ++b) detected.insert(pair_key(m[a], m[b]));

  // Exact Jaccard of every pair sharing a shingle (an inverted index); empty sets pair up.
  std::unordered_map<uint64_t, std::vector<int32_t>> postings;
  std::vector<int32_t> shared(static_cast<size_t>(n), 0);
  std::vector<int32_t> touched;
  std::vector<int64_t> empties;
  int64_t true_pairs = 0, true_positives = 0;
  std::vector<int64_t> missed_hist(5, 0);  // missed true pairs: 4 equal bins of [t, 1), then 1
  std::string pairs_out;
  auto report = [&](int64_t a, int64_t b, double jaccard) {
    const bool same = detected.count(pair_key(a, b)) != 0;
    if (jaccard >= threshold) {
      ++true_pairs;
      if (same) {
        ++true_positives;
      } else {
        const int bin =
            jaccard >= 1.0
                ? 4
                : std::min(3, static_cast<int>((jaccard - threshold) / ((1 - threshold) / 4)));
        ++missed_hist[std::max(0, bin)];
      }
    }
    if (jaccard >= kReportedJaccard || same) {
      char buf[64];
      std::snprintf(buf, sizeof(buf), "%.4f", jaccard);
      pairs_out += "{\"a\": " + ids[a] + ", \"b\": " + ids[b] + ", \"jaccard\": " + buf +
                   ", \"same_cluster\": " + (same ? "true" : "false") + "}\n";
    }
  };
  std::unordered_set<uint64_t> seen_detected;  // detected pairs with a shared shingle
  for (int64_t i = 0; i < n; ++i) {
    touched.clear();
    if (sets[i].empty()) {
      for (int64_t e : empties) report(e, i, 1.0), seen_detected.insert(pair_key(e, i));
      empties.push_back(i);
      continue;
    }
    for (uint64_t s : sets[i]) {
      auto& list = postings[s];
      for (int32_t j : list)
        if (shared[j]++ == 0) touched.push_back(j);
      list.push_back(static_cast<int32_t>(i));
    }
    std::sort(touched.begin(), touched.end());
    for (int32_t j : touched) {
      const double inter = shared[j];
      const double jaccard = inter / (static_cast<double>(sets[i].size() + sets[j].size()) - inter);
      report(j, i, jaccard);
      seen_detected.insert(pair_key(j, i));
      shared[j] = 0;
    }
  }
  // Detected pairs that share no shingle at all (Jaccard 0): false positives too.
  for (uint64_t key : detected)
    if (!seen_detected.count(key))
      report(static_cast<int64_t>(key >> 32), static_cast<int64_t>(key & 0xffffffffu), 0.0);

  const auto detected_pairs = static_cast<int64_t>(detected.size());
  const double precision =
      detected_pairs ? static_cast<double>(true_positives) / detected_pairs : 1.0;
  const double recall = true_pairs ? static_cast<double>(true_positives) / true_pairs : 1.0;
  const double f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0.0;
  nlohmann::json out = {
      {"format_version", 1},
      {"docs", n},
      {"threshold", threshold},
      {"ngram", config.dedup.ngram},
      {"true_pairs", true_pairs},
      {"detected_pairs", detected_pairs},
      {"true_positives", true_positives},
      {"precision", precision},
      {"recall", recall},
      {"f1", f1},
      {"removed", removed},
      {"removed_with_jaccard_to_representative_at_threshold", removed_true},
      {"representative_precision", removed ? static_cast<double>(removed_true) / removed : 1.0},
      {"missed_pairs_by_jaccard", nlohmann::json::array()}};
  for (int b = 0; b < 5; ++b) {
    const double w = (1 - threshold) / 4;
    out["missed_pairs_by_jaccard"].push_back({{"from", b < 4 ? threshold + b * w : 1.0},
                                              {"to", b < 4 ? threshold + (b + 1) * w : 1.0},
                                              {"missed", missed_hist[b]}});
  }
  io::publish_text(dir + "/quality.json", out.dump(2) + "\n");
  io::publish_text(dir + "/quality_pairs.jsonl", pairs_out);
  std::printf("%lld documents, threshold %.2f, %d-word shingles\n", static_cast<long long>(n),
              threshold, config.dedup.ngram);
  std::printf("  pairs with Jaccard >= threshold  %lld\n", static_cast<long long>(true_pairs));
  std::printf("  pairs in one cluster             %lld\n", static_cast<long long>(detected_pairs));
  std::printf("  both                             %lld\n", static_cast<long long>(true_positives));
  std::printf("  precision %.4f  recall %.4f  F1 %.4f\n", precision, recall, f1);
  std::printf(
      "  removed %lld, of which %lld have Jaccard >= threshold to their representative (%.4f)\n",
      static_cast<long long>(removed), static_cast<long long>(removed_true),
      removed ? static_cast<double>(removed_true) / removed : 1.0);
  std::fflush(stdout);
}

}  // namespace

int dedup_quality_job(cluster::Comm& comm, const pipeline::Config& config) {
  cluster::run_local_phase(comm, "dedup-quality", [&] {
    if (comm.rank() == 0) quality(config);
  });
  return 0;
}

}  // namespace sf::jobs
