// near_duplicates (stages/dedup/clusters.h): LSH band buckets, candidate verification and
// distributed connected components.
//
// The records go as raw bytes (cluster::exchange of plain structs), not through Boost
// archives (cluster/archive.h): packing and unpacking 1.4M band records (100k documents x 14
// bands) takes 0.21 s raw and 0.74 s as a binary archive (bench/archive_bench.cc).
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "stages/dedup/clusters.h"
#include "stages/dedup/clusters/shuffle.h"

namespace sf::stages::dedup {

using namespace detail;  // shuffle.h: what the duplicate clusters share

namespace {

class StepTimer {
 public:
  explicit StepTimer(NearStats* stats) : stats_(stats) {}
  void done(const std::string& step) {
    const auto now = std::chrono::steady_clock::now();
    if (stats_)
      stats_->step_seconds.emplace_back(step, std::chrono::duration<double>(now - start_).count());
    start_ = now;
  }

 private:
  NearStats* stats_;
  std::chrono::steady_clock::time_point start_ = std::chrono::steady_clock::now();
};

// ---- records of the shuffles ----------------------------------------------------------------

struct BucketPart {  // one rank's members of one band bucket
  uint64_t key;
  uint64_t min_row;
  uint64_t count;
};
struct BucketMin {  // the owner's answer: the bucket's smallest row
  uint64_t key;
  uint64_t min_row;
};
struct LabelProposal {
  uint64_t row;
  uint64_t label;
};
struct ClusterPart {  // one rank's members of one cluster (label)
  uint64_t label;
  uint64_t best_row;
  double best_score;
  uint64_t count;
};
struct ClusterRep {
  uint64_t label;
  uint64_t representative;
};

// ---- similarity -----------------------------------------------------------------------------

double estimated_jaccard(const uint32_t* a, const uint32_t* b, int width) {
  int equal = 0;
  for (int k = 0; k < width; ++k) equal += a[k] == b[k];
  return static_cast<double>(equal) / width;
}

double exact_jaccard(const uint64_t* a, size_t na, const uint64_t* b, size_t nb) {
  if (na == 0 && nb == 0) return 1.0;
  size_t i = 0, j = 0, common = 0;
  while (i < na && j < nb) {
    if (a[i] < b[j]) {
      ++i;
    } else if (b[j] < a[i]) {
      ++j;
    } else {
      ++common;
      ++i;
      ++j;
    }
  }
  return static_cast<double>(common) / static_cast<double>(na + nb - common);
}

// Similarity of local documents to remote ones: fetches the remote signatures (or shingle
// sets) once per distinct row. Collective to build.
class Similarity {
 public:
  Similarity(Comm& comm, const RowOwners& owners, const std::vector<DocRef>& docs,
             const std::vector<uint32_t>& signatures, int width,
             const std::vector<std::vector<uint64_t>>& shingles, std::vector<uint64_t> others)
      : signatures_(signatures), width_(width), shingles_(shingles),
        others_(std::move(others)) {
    fetched_ = fetch(comm, owners, docs, others_, [&](size_t i, Bytes& out) {
      if (shingles_.empty()) {
        const char* p = reinterpret_cast<const char*>(&signatures_[i * width_]);
        out.insert(out.end(), p, p + sizeof(uint32_t) * width_);
      } else {
        const char* p = reinterpret_cast<const char*>(shingles_[i].data());
        out.insert(out.end(), p, p + sizeof(uint64_t) * shingles_[i].size());
      }
    });
  }
  // Jaccard of local document `i` and `other` (one of the rows given to the constructor).
  double operator()(size_t i, uint64_t other) {
    const size_t k = position(others_, other);
    if (shingles_.empty()) {
      scratch32_.resize(width_);
      std::memcpy(scratch32_.data(), fetched_.at(k), sizeof(uint32_t) * width_);
      return estimated_jaccard(&signatures_[i * width_], scratch32_.data(), width_);
    }
    scratch64_.resize(fetched_.size(k) / sizeof(uint64_t));
    if (!scratch64_.empty()) std::memcpy(scratch64_.data(), fetched_.at(k), fetched_.size(k));
    return exact_jaccard(shingles_[i].data(), shingles_[i].size(), scratch64_.data(),
                         scratch64_.size());
  }

 private:
  const std::vector<uint32_t>& signatures_;
  int width_;
  const std::vector<std::vector<uint64_t>>& shingles_;
  std::vector<uint64_t> others_;
  Fetched fetched_;
  std::vector<uint32_t> scratch32_;
  std::vector<uint64_t> scratch64_;
};

}  // namespace

std::vector<Verdict> near_duplicates(Comm& comm, RowRange range,
                                     const std::vector<DocRef>& docs,
                                     const std::vector<uint32_t>& signatures,
                                     const LshParams& params,
                                     const std::vector<std::vector<uint64_t>>& shingles,
                                     NearStats* stats, std::vector<NearPair>* verified) {
  const int ranks = comm.size();
  const int width = params.width();
  StepTimer timer(stats);
  if (stats) *stats = NearStats{};
  cluster::run_local_phase(comm, "dedup: near duplicates input", [&] {
    check_docs(range, docs);
    if (params.bands < 1 || params.rows < 1 || params.num_perm < 0 ||
        static_cast<int64_t>(params.bands) * params.rows > width)
      throw std::invalid_argument("near dedup: " + std::to_string(params.bands) + " bands x " +
                                  std::to_string(params.rows) + " rows do not fit " +
                                  std::to_string(width) + " MinHash values");
    if (!(params.threshold >= 0.0 && params.threshold <= 1.0))
      throw std::invalid_argument("near dedup: threshold " + std::to_string(params.threshold) +
                                  " is not in [0, 1]");
    if (signatures.size() != docs.size() * static_cast<size_t>(width))
      throw std::invalid_argument("near dedup: " + std::to_string(signatures.size()) +
                                  " signature values for " + std::to_string(docs.size()) +
                                  " documents x " + std::to_string(width) + " values");
    if (!shingles.empty() && shingles.size() != docs.size())
      throw std::invalid_argument("near dedup: " + std::to_string(shingles.size()) +
                                  " shingle sets for " + std::to_string(docs.size()) +
                                  " documents");
    for (size_t i = 0; i < shingles.size(); ++i)
      for (size_t k = 1; k < shingles[i].size(); ++k)
        if (shingles[i][k - 1] >= shingles[i][k])
          throw std::invalid_argument("near dedup: the shingle set of row " +
                                      std::to_string(docs[i].row) +
                                      " is not sorted and unique");
  });
  {  // every rank must band and verify the same way: compare with rank 0's parameters
    struct Shape {
      int64_t bands, rows, width, exact;
      double threshold;
    };
    const Shape mine{params.bands, params.rows, width, shingles.empty() ? 0 : 1,
                     params.threshold};
    Bytes bytes(sizeof mine);
    std::memcpy(bytes.data(), &mine, sizeof mine);
    comm.broadcast(bytes, 0);
    Shape first;
    std::memcpy(&first, bytes.data(), sizeof first);
    cluster::run_local_phase(comm, "dedup: near duplicates parameters", [&] {
      if (first.bands != mine.bands || first.rows != mine.rows || first.width != mine.width ||
          first.exact != mine.exact || first.threshold != mine.threshold)
        throw std::invalid_argument(
            "near dedup: this rank's bands, rows, signature width, threshold or exact mode "
            "disagree with rank 0's");
    });
  }
  const RowOwners owners(comm, range);
  timer.done("check input");

  // 1-3, one band at a time (memory: one band's keys, not all of them). Entry = (bucket key,
  // row); the key hashes the band's values seeded by the band index. Each rank sends
  // owner(key) one BucketPart per local bucket; the owner answers the smallest row of each
  // bucket with >= 2 members to its contributors; each member then gets a star edge
  // (member -> that smallest row).
  struct BandEntry {
    uint64_t key;
    uint64_t row;
  };
  int64_t buckets = 0, largest_bucket = 0, bucket_entries = 0, most_parts = 0;
  std::vector<std::pair<uint64_t, uint64_t>> pairs;  // (row, target), this rank's rows
  std::vector<BandEntry> entries, scratch;
  for (int band = 0; band < params.bands; ++band) {
    std::vector<std::vector<BucketPart>> parts(ranks);
    cluster::run_local_phase(comm, "dedup: band keys", [&] {
      entries.clear();
      entries.reserve(docs.size());
      const size_t offset = static_cast<size_t>(band) * params.rows;
      for (size_t i = 0; i < docs.size(); ++i)
        entries.push_back({XXH3_64bits_withSeed(&signatures[i * width + offset],
                                                sizeof(uint32_t) * params.rows,
                                                static_cast<uint64_t>(band)),
                           docs[i].row});
      // stable: rows stay increasing within a key
      radix_sort(entries, scratch, [](const BandEntry& e) { return e.key; });
      for (size_t g = 0; g < entries.size();) {
        size_t e = g + 1;
        while (e < entries.size() && entries[e].key == entries[g].key) ++e;
        parts[key_owner(entries[g].key, ranks)].push_back(
            {entries[g].key, entries[g].row, static_cast<uint64_t>(e - g)});
        g = e;
      }
    });
    std::vector<std::vector<BucketPart>> bucket_parts = exchange(comm, parts);

    std::vector<std::vector<BucketMin>> mins(ranks);
    cluster::run_local_phase(comm, "dedup: band buckets", [&] {
      struct Entry {
        BucketPart part;
        int source;
      };
      std::vector<Entry> all;
      std::vector<size_t> runs = {0};  // each source's parts arrive sorted by key
      for (int s = 0; s < ranks; ++s) {
        for (const BucketPart& p : bucket_parts[s]) all.push_back({p, s});
        runs.push_back(all.size());
      }
      bucket_parts.clear();
      bucket_entries = std::max(bucket_entries, static_cast<int64_t>(all.size()));
      merge_runs(all, runs,
                 [](const Entry& a, const Entry& b) { return a.part.key < b.part.key; });
      for (size_t g = 0; g < all.size();) {
        size_t e = g + 1;
        uint64_t count = all[g].part.count, min_row = all[g].part.min_row;
        for (; e < all.size() && all[e].part.key == all[g].part.key; ++e) {
          count += all[e].part.count;
          min_row = std::min(min_row, all[e].part.min_row);
        }
        if (count >= 2) {
          ++buckets;
          largest_bucket = std::max(largest_bucket, static_cast<int64_t>(count));
          most_parts = std::max(most_parts, static_cast<int64_t>(e - g));
          for (size_t k = g; k < e; ++k)
            mins[all[k].source].push_back({all[g].part.key, min_row});
        }
        g = e;
      }
    });
    std::vector<std::vector<BucketMin>> bucket_mins = exchange(comm, mins);

    cluster::run_local_phase(comm, "dedup: candidate pairs", [&] {
      std::vector<BucketMin> known;
      for (auto& m : bucket_mins) known.insert(known.end(), m.begin(), m.end());
      bucket_mins.clear();
      std::sort(known.begin(), known.end(),
                [](const BucketMin& a, const BucketMin& b) { return a.key < b.key; });
      size_t k = 0;
      for (const BandEntry& entry : entries) {
        while (k < known.size() && known[k].key < entry.key) ++k;
        if (k < known.size() && known[k].key == entry.key && entry.row != known[k].min_row)
          pairs.emplace_back(entry.row, known[k].min_row);
      }
      // keep the pairs of earlier bands unique as they accumulate
      if (pairs.size() > 4 * docs.size() + 1024) {
        std::sort(pairs.begin(), pairs.end());
        pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
      }
    });
  }
  std::vector<BandEntry>().swap(entries);
  std::vector<BandEntry>().swap(scratch);
  timer.done("band buckets");

  struct Edge {
    uint64_t u;  // local document index
    uint64_t v;  // row of the other end, v < row(u)
  };
  std::vector<Edge> edges;
  std::vector<uint64_t> targets;
  cluster::run_local_phase(comm, "dedup: candidate pairs", [&] {
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());
    edges.reserve(pairs.size());
    size_t i = 0;
    for (const auto& [row, target] : pairs) {
      while (docs[i].row < row) ++i;
      edges.push_back({i, target});
      targets.push_back(target);
    }
    std::vector<std::pair<uint64_t, uint64_t>>().swap(pairs);
    sort_unique(targets);
  });
  const int64_t candidate_pairs = comm.sum(static_cast<int64_t>(edges.size()));
  timer.done("candidate pairs");

  // 4. Verification: Jaccard >= threshold, against the target's signature or shingles.
  {
    Similarity similarity(comm, owners, docs, signatures, width, shingles, targets);
    cluster::run_local_phase(comm, "dedup: verify candidates", [&] {
      std::vector<Edge> kept;
      if (verified) verified->clear();
      for (const Edge& e : edges) {
        const double s = similarity(e.u, e.v);
        if (s < params.threshold) continue;
        kept.push_back(e);
        if (verified) verified->push_back({docs[e.u].row, e.v, s});
      }
      edges.swap(kept);
    });
  }
  const int64_t verified_edges = comm.sum(static_cast<int64_t>(edges.size()));
  timer.done("verify candidates");

  // 5. Connected components: label[i] = a row of i's component, finally the smallest.
  // Each round hooks the larger of two different labels across an edge onto the smaller,
  // then pointer-jumps (label = label of label) until every label is a root.
  std::vector<uint64_t> label(docs.size());
  for (size_t i = 0; i < docs.size(); ++i) label[i] = docs[i].row;
  int64_t cc_rounds = 0, jump_rounds = 0;
  std::vector<uint64_t> ends;
  for (const Edge& e : edges) ends.push_back(e.v);
  sort_unique(ends);
  for (;;) {
    ++cc_rounds;
    const std::vector<uint64_t> end_labels = fetch_labels(comm, owners, docs, label, ends);
    std::vector<std::vector<LabelProposal>> proposals(ranks);
    cluster::run_local_phase(comm, "dedup: components hook", [&] {
      std::vector<LabelProposal> all;
      for (const Edge& e : edges) {
        const uint64_t a = label[e.u], b = end_labels[position(ends, e.v)];
        if (a == b) continue;
        const uint64_t lo = std::min(a, b), hi = std::max(a, b);
        all.push_back({hi, lo});
        if (lo < a) all.push_back({docs[e.u].row, lo});
        if (lo < b) all.push_back({e.v, lo});
      }
      std::sort(all.begin(), all.end(), [](const LabelProposal& x, const LabelProposal& y) {
        return x.row != y.row ? x.row < y.row : x.label < y.label;
      });
      for (size_t k = 0; k < all.size(); ++k)  // combine: the smallest proposal per row
        if (k == 0 || all[k].row != all[k - 1].row)
          proposals[owners.owner(all[k].row)].push_back(all[k]);
    });
    const std::vector<std::vector<LabelProposal>> arrived = exchange(comm, proposals);
    int64_t changed = 0;
    cluster::run_local_phase(comm, "dedup: components apply", [&] {
      for (const auto& from : arrived)
        for (const LabelProposal& p : from) {
          uint64_t& l = label[local_index(docs, p.row)];
          if (p.label < l) {
            l = p.label;
            ++changed;
          }
        }
    });
    if (comm.sum(changed) == 0) break;
    for (;;) {  // pointer jumping
      ++jump_rounds;
      std::vector<uint64_t> pointed;
      for (size_t i = 0; i < docs.size(); ++i)
        if (label[i] != docs[i].row) pointed.push_back(label[i]);
      sort_unique(pointed);
      const std::vector<uint64_t> next = fetch_labels(comm, owners, docs, label, pointed);
      int64_t moved = 0;
      for (size_t i = 0; i < docs.size(); ++i) {
        if (label[i] == docs[i].row) continue;
        const uint64_t n = next[position(pointed, label[i])];
        if (n != label[i]) {
          label[i] = n;
          ++moved;
        }
      }
      if (comm.sum(moved) == 0) break;
    }
  }
  std::vector<uint64_t>().swap(ends);
  std::vector<Edge>().swap(edges);
  timer.done("connected components");

  // 6. Representatives: each rank sends owner(label) its best member per cluster; the owner
  // (which holds the label's document, the cluster's root) decides and answers.
  std::vector<std::vector<ClusterPart>> cluster_parts(ranks);
  cluster::run_local_phase(comm, "dedup: cluster parts", [&] {
    std::vector<size_t> members;
    for (size_t i = 0; i < docs.size(); ++i)
      if (label[i] != docs[i].row) members.push_back(i);
    std::sort(members.begin(), members.end(), [&](size_t a, size_t b) {
      return label[a] != label[b] ? label[a] < label[b] : a < b;
    });
    for (size_t g = 0; g < members.size();) {
      const uint64_t l = label[members[g]];
      ClusterPart part{l, docs[members[g]].row, docs[members[g]].keep_score, 0};
      size_t e = g;
      for (; e < members.size() && label[members[e]] == l; ++e) {
        const DocRef& d = docs[members[e]];
        if (keeps_over(d.keep_score, d.row, part.best_score, part.best_row)) {
          part.best_row = d.row;
          part.best_score = d.keep_score;
        }
        ++part.count;
      }
      cluster_parts[owners.owner(l)].push_back(part);
      g = e;
    }
  });
  std::vector<std::vector<ClusterPart>> arrived_parts = exchange(comm, cluster_parts);
  int64_t clusters = 0, largest_cluster = 0;
  std::vector<std::vector<ClusterRep>> reps(ranks);
  std::vector<ClusterRep> root_reps;  // clusters whose root document is on this rank
  cluster::run_local_phase(comm, "dedup: representatives", [&] {
    struct Entry {
      ClusterPart part;
      int source;
    };
    std::vector<Entry> all;
    for (int s = 0; s < ranks; ++s)
      for (const ClusterPart& p : arrived_parts[s]) all.push_back({p, s});
    arrived_parts.clear();
    std::sort(all.begin(), all.end(),
              [](const Entry& a, const Entry& b) { return a.part.label < b.part.label; });
    for (size_t g = 0; g < all.size();) {
      const uint64_t l = all[g].part.label;
      const DocRef& root = docs[local_index(docs, l)];
      uint64_t best_row = root.row, size = 1;
      double best_score = root.keep_score;
      size_t e = g;
      for (; e < all.size() && all[e].part.label == l; ++e) {
        const ClusterPart& p = all[e].part;
        size += p.count;
        if (keeps_over(p.best_score, p.best_row, best_score, best_row)) {
          best_row = p.best_row;
          best_score = p.best_score;
        }
      }
      ++clusters;
      largest_cluster = std::max(largest_cluster, static_cast<int64_t>(size));
      for (size_t k = g; k < e; ++k) reps[all[k].source].push_back({l, best_row});
      root_reps.push_back({l, best_row});
      g = e;
    }
  });
  std::vector<std::vector<ClusterRep>> arrived_reps = exchange(comm, reps);
  timer.done("representatives");

  // 7. Verdicts: every member but the representative, with its Jaccard to it.
  std::vector<ClusterRep> known;
  for (auto& r : arrived_reps) known.insert(known.end(), r.begin(), r.end());
  arrived_reps.clear();
  known.insert(known.end(), root_reps.begin(), root_reps.end());
  std::sort(known.begin(), known.end(), [](const ClusterRep& a, const ClusterRep& b) {
    return a.label != b.label ? a.label < b.label : a.representative < b.representative;
  });
  known.erase(std::unique(known.begin(), known.end(),
                          [](const ClusterRep& a, const ClusterRep& b) {
                            return a.label == b.label;
                          }),
              known.end());
  auto representative_of = [&](size_t i) -> const ClusterRep* {
    const auto it = std::lower_bound(
        known.begin(), known.end(), label[i],
        [](const ClusterRep& r, uint64_t l) { return r.label < l; });
    return it != known.end() && it->label == label[i] ? &*it : nullptr;
  };
  std::vector<uint64_t> rep_rows;
  for (size_t i = 0; i < docs.size(); ++i) {
    const ClusterRep* r = representative_of(i);
    if (r && r->representative != docs[i].row) rep_rows.push_back(r->representative);
  }
  sort_unique(rep_rows);
  std::vector<Verdict> verdicts;
  {
    Similarity similarity(comm, owners, docs, signatures, width, shingles, rep_rows);
    cluster::run_local_phase(comm, "dedup: near verdicts", [&] {
      for (size_t i = 0; i < docs.size(); ++i) {
        const ClusterRep* r = representative_of(i);
        if (!r || r->representative == docs[i].row) continue;
        verdicts.push_back(
            {docs[i].row, r->label, r->representative, similarity(i, r->representative)});
      }
    });
  }
  timer.done("verdicts");

  // Collective on every rank whether or not it asked for stats.
  std::vector<int64_t> sums = {buckets, clusters};
  comm.allreduce_sum(sums.data(), sums.size());
  const int64_t maxima[4] = {
      global_max(comm, largest_bucket), global_max(comm, largest_cluster),
      global_max(comm, bucket_entries), global_max(comm, most_parts)};
  if (stats) {
    stats->buckets = sums[0];
    stats->clusters = sums[1];
    stats->largest_bucket = maxima[0];
    stats->largest_cluster = maxima[1];
    stats->max_rank_bucket_entries = maxima[2];
    stats->largest_bucket_parts = maxima[3];
    stats->candidate_pairs = candidate_pairs;
    stats->verified_edges = verified_edges;
    stats->cc_rounds = cc_rounds;
    stats->jump_rounds = jump_rounds;
  }
  return verdicts;
}

}  // namespace sf::stages::dedup
