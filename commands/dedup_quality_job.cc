// `shardforge dedup-quality`: exact all-pairs Jaccard against the pairs and clusters of a dedup
// run (stages/dedup/quality.h). See commands/dedup.h.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <numeric>
#include <unordered_map>
#include <unordered_set>

#include "io/atomic_file.h"
#include "commands/dedup.h"
#include "pipeline/text_dedup.h"
#include "runtime/run_manifest.h"
#include "stages/dedup/quality.h"

namespace sf::commands {
namespace {

namespace dd = stages::dedup;

constexpr double kReportedJaccard = 0.3;  // pairs at or above this go to quality_pairs.jsonl
constexpr int kQualityJsonFormatVersion = 2;

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

// Calls line_fn(json, line number) for each line of `path`; a line that is not a JSON object
// with the wanted fields is an InputError naming the file and line.
void for_each_json_line(const std::string& path, const std::string& hint,
                        const std::function<void(const nlohmann::json&, int64_t)>& line_fn) {
  std::ifstream in(path);
  if (!in) throw io::InputError(path + ": cannot open (" + hint + ")");
  std::string line;
  int64_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    try {
      line_fn(nlohmann::json::parse(line), lineno);
    } catch (const nlohmann::json::exception& e) {
      throw io::InputError(path + ":" + std::to_string(lineno) + ": " + e.what());
    }
  }
}

std::string fixed4(double x) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.4f", x);
  return buf;
}

void quality(const runtime::Config& config) {
  const stages::dedup::KeepPolicy keep = pipeline::parse_keep_policy(config);
  const io::TextReadOptions read = pipeline::dedup_read_options(config, keep);
  const dd::NormaliseOptions norm = pipeline::dedup_normalise_options(config);
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
  auto row = [&](const std::string& path, int64_t lineno, const nlohmann::json& id) {
    auto it = row_of.find(id.dump());
    if (it == row_of.end())
      throw io::InputError(path + ":" + std::to_string(lineno) + ": id " + id.dump() +
                           " is not in the corpus (was dedup run on this config?)");
    return it->second;
  };

  // What the dedup run decided: clusters and representatives, and the pairs it verified.
  dd::DedupOutcome outcome;
  // ids.size(), not n: GCC 12 at -O3 cannot see that n >= 0 and warns (-Wstringop-overflow).
  outcome.representative.assign(ids.size(), -1);
  UnionFind clusters(n);
  const std::string dup_path = dir + "/duplicates.jsonl";
  for_each_json_line(dup_path, "run `shardforge dedup` first",
                     [&](const nlohmann::json& j, int64_t lineno) {
                       const int64_t r = row(dup_path, lineno, j.at("id")),
                                     rep = row(dup_path, lineno, j.at("representative"));
                       clusters.join(r, row(dup_path, lineno, j.at("cluster")));
                       clusters.join(r, rep);
                       outcome.representative[r] = rep;
                     });
  outcome.cluster.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) outcome.cluster[i] = clusters.find(i);
  const std::string pairs_path = dir + "/pairs.jsonl";
  for_each_json_line(pairs_path, "run `shardforge dedup` with dedup.write_pairs: true first",
                     [&](const nlohmann::json& j, int64_t lineno) {
                       const int64_t a = row(pairs_path, lineno, j.at("a")),
                                     b = row(pairs_path, lineno, j.at("b"));
                       if (a == b)
                         throw io::InputError(pairs_path + ":" + std::to_string(lineno) +
                                              ": a pair joins a document to itself");
                       outcome.pairs.push_back({a, b, j.at("reason").get<std::string>() == "near"});
                     });

  std::string pairs_out;
  const dd::DedupQuality q = dd::measure_dedup_quality(
      sets, outcome, threshold, kReportedJaccard,
      [&](int64_t a, int64_t b, double jaccard, bool same, bool claimed) {
        pairs_out += "{\"a\": " + ids[a] + ", \"b\": " + ids[b] +
                     ", \"jaccard\": " + fixed4(jaccard) +
                     ", \"same_cluster\": " + (same ? "true" : "false") +
                     ", \"verified\": " + (claimed ? "true" : "false") + "}\n";
      });

  nlohmann::json out = {
      {"format_version", kQualityJsonFormatVersion},
      {"docs", n},
      {"threshold", threshold},
      {"ngram", config.dedup.ngram},
      {"definitions",
       {{"true_pair", "two documents whose exact Jaccard of shingle sets is >= threshold"},
        {"precision",
         "pair precision: of the pairs dedup verified as duplicates (pairs.jsonl: exact "
         "duplicates with their kept document, near candidate edges that passed verification), "
         "the share that are true pairs"},
        {"recall",
         "pair recall: of the true pairs, the share whose two documents dedup put in one "
         "cluster (at most one of them kept)"},
        {"f1", "harmonic mean of precision and recall"},
        {"transitive_precision",
         "of all pairs of documents in one cluster, the share that are true pairs; lower than "
         "precision because a connected component chains A~B~C although A and C may be "
         "further apart than the threshold"},
        {"representative_precision",
         "of the removed documents, the share with Jaccard >= threshold to their representative"},
        {"document_precision",
         "of the removed documents, the share with Jaccard >= threshold to some kept document"},
        {"document_recall",
         "of the documents with a true duplicate, the share removed or kept with no kept true "
         "duplicate left"}}},
      {"true_pairs", q.true_pairs},
      {"verified_pairs", q.claimed_pairs},
      {"verified_true", q.claimed_true},
      {"verified_near", q.claimed_near},
      {"verified_near_true", q.claimed_near_true},
      {"verified_exact", q.claimed_exact},
      {"verified_exact_true", q.claimed_exact_true},
      {"true_pairs_in_one_cluster", q.true_pairs_same_cluster},
      {"precision", q.precision()},
      {"recall", q.recall()},
      {"f1", q.f1()},
      {"pairs_in_one_cluster", q.same_cluster_pairs},
      {"transitive_precision", q.transitive_precision()},
      {"removed", q.removed},
      {"removed_with_jaccard_to_representative_at_threshold", q.removed_true_to_representative},
      {"representative_precision", q.representative_precision()},
      {"removed_with_a_kept_true_duplicate", q.removed_true_to_kept},
      {"document_precision", q.document_precision()},
      {"docs_with_true_duplicate", q.docs_with_true_duplicate},
      {"docs_resolved", q.docs_resolved},
      {"document_recall", q.document_recall()},
      {"true_pairs_both_kept", q.residual_pairs},
      {"missed_pairs_by_jaccard", nlohmann::json::array()},
      {"false_verified_by_jaccard", nlohmann::json::array()}};
  const double w = (1 - threshold) / 4;
  for (int b = 0; b < 5; ++b)
    out["missed_pairs_by_jaccard"].push_back({{"from", b < 4 ? threshold + b * w : 1.0},
                                              {"to", b < 4 ? threshold + (b + 1) * w : 1.0},
                                              {"missed", q.missed_by_jaccard[b]}});
  for (int b = 0; b < 5; ++b)
    out["false_verified_by_jaccard"].push_back({{"from", b < 4 ? threshold - 0.05 * (b + 1) : 0.0},
                                                {"to", threshold - 0.05 * b},
                                                {"pairs", q.false_claims_by_jaccard[b]}});
  io::publish_text(dir + "/quality.json", out.dump(2) + "\n");
  io::publish_text(dir + "/quality_pairs.jsonl", pairs_out);
  auto ll = [](int64_t x) { return static_cast<long long>(x); };
  std::printf("%lld documents, threshold %.2f, %d-word shingles\n", ll(n), threshold,
              config.dedup.ngram);
  std::printf("  true pairs (Jaccard >= threshold)   %lld\n", ll(q.true_pairs));
  std::printf(
      "  verified pairs (pairs.jsonl)        %lld, %lld true (near %lld/%lld, exact %lld/%lld)\n",
      ll(q.claimed_pairs), ll(q.claimed_true), ll(q.claimed_near_true), ll(q.claimed_near),
      ll(q.claimed_exact_true), ll(q.claimed_exact));
  std::printf("  true pairs in one cluster           %lld\n", ll(q.true_pairs_same_cluster));
  std::printf(
      "  precision %.4f  recall %.4f  F1 %.4f   (pairs verified / true pairs in one cluster)\n",
      q.precision(), q.recall(), q.f1());
  std::printf(
      "  transitive precision %.4f  (%lld pairs in one cluster; chains join ends < threshold)\n",
      q.transitive_precision(), ll(q.same_cluster_pairs));
  std::printf("  removed %lld: representative precision %.4f, document precision %.4f\n",
              ll(q.removed), q.representative_precision(), q.document_precision());
  std::printf(
      "  documents with a true duplicate %lld: document recall %.4f (%lld true pairs both kept)\n",
      ll(q.docs_with_true_duplicate), q.document_recall(), ll(q.residual_pairs));
  std::fflush(stdout);
}

}  // namespace

int dedup_quality_job(cluster::Comm& comm, const runtime::Config& config) {
  runtime::claim_outputs(comm, config.output.dir, {"quality.json", "quality_pairs.jsonl"});
  cluster::run_local_phase(comm, "dedup-quality", [&] {
    if (comm.rank() == 0) quality(config);
  });
  return 0;
}

}  // namespace sf::commands
