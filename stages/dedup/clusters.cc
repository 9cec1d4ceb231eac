// Duplicate clusters across ranks (see clusters.h).
//
// Every step is local work followed by one Comm::alltoallv. Records keyed by a hash go to
// owner(hash); records about a document go to the rank whose row range holds it. Before a
// keyed shuffle each rank combines its own records per key, so a key shared by a million
// documents costs its owner one record per contributing rank.
//
// The records go as raw bytes (cluster::exchange of plain structs), not through Boost
// archives (cluster/archive.h): packing and unpacking 1.4M band records (100k documents x 14
// bands) takes 0.21 s raw and 0.74 s as a binary archive (bench/archive_bench.cc).
#include "stages/dedup/clusters.h"

#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <stdexcept>
#include <type_traits>

#include "stages/mix64.h"

namespace sf::stages::dedup {
namespace {

using cluster::Bytes;
using cluster::Comm;
using cluster::RowRange;

// ---- shuffles of plain records ------------------------------------------------------------

using cluster::exchange;

using stages::mix64;

int key_owner(uint64_t key, int ranks) { return static_cast<int>(mix64(key) % ranks); }

int64_t global_max(Comm& comm, int64_t value) { return -comm.min(-value); }

// Which rank holds a row: the ranks' ranges, gathered once. Collective to build.
class RowOwners {
 public:
  RowOwners(Comm& comm, RowRange mine) {
    Bytes bytes(sizeof(RowRange));
    std::memcpy(bytes.data(), &mine, sizeof mine);
    const std::vector<Bytes> all = comm.allgather(bytes);
    std::string problem;
    int64_t previous_end = std::numeric_limits<int64_t>::min();
    for (size_t r = 0; r < all.size(); ++r) {
      RowRange range;
      std::memcpy(&range, all[r].data(), sizeof range);
      if (range.begin < 0 || range.end < range.begin) {
        problem = "rank " + std::to_string(r) + " has an invalid row range [" +
                  std::to_string(range.begin) + ", " + std::to_string(range.end) + ")";
        break;
      }
      if (range.size() == 0) continue;
      if (range.begin < previous_end) {
        problem = "row ranges overlap or do not increase with rank (rank " + std::to_string(r) +
                  " starts at " + std::to_string(range.begin) + ")";
        break;
      }
      previous_end = range.end;
      begins_.push_back(static_cast<uint64_t>(range.begin));
      ends_.push_back(static_cast<uint64_t>(range.end));
      ranks_.push_back(static_cast<int>(r));
    }
    cluster::run_local_phase(comm, "dedup: row ranges", [&] {
      if (!problem.empty()) throw std::invalid_argument(problem);
    });
  }
  int owner(uint64_t row) const {
    const size_t k = static_cast<size_t>(
        std::upper_bound(begins_.begin(), begins_.end(), row) - begins_.begin());
    if (k == 0 || row >= ends_[k - 1])
      throw std::logic_error("dedup: row " + std::to_string(row) + " lies in no rank's range");
    return ranks_[k - 1];
  }

 private:
  std::vector<uint64_t> begins_, ends_;
  std::vector<int> ranks_;
};

// Local index of `row` in `docs` (sorted by row).
size_t local_index(const std::vector<DocRef>& docs, uint64_t row) {
  const auto it = std::lower_bound(docs.begin(), docs.end(), row,
                                   [](const DocRef& d, uint64_t r) { return d.row < r; });
  if (it == docs.end() || it->row != row)
    throw std::logic_error("dedup: row " + std::to_string(row) + " is not on this rank");
  return static_cast<size_t>(it - docs.begin());
}

// Keep policy: the larger keep_score wins, ties -> the smaller row.
bool keeps_over(double score_a, uint64_t row_a, double score_b, uint64_t row_b) {
  return score_a > score_b || (score_a == score_b && row_a < row_b);
}

// The payload of each requested row, in the order of the request.
struct Fetched {
  Bytes data;
  std::vector<size_t> begin;  // rows + 1 offsets into data
  const char* at(size_t k) const { return data.data() + begin[k]; }
  size_t size(size_t k) const { return begin[k + 1] - begin[k]; }
};

// Collective: for each of `rows` (sorted, unique; rows of documents on any rank) returns the
// payload its owner writes with encode(local index, out).
Fetched fetch(Comm& comm, const RowOwners& owners, const std::vector<DocRef>& docs,
              const std::vector<uint64_t>& rows,
              const std::function<void(size_t, Bytes&)>& encode) {
  const int ranks = comm.size();
  std::vector<std::vector<uint64_t>> requests(ranks);
  cluster::run_local_phase(comm, "dedup: fetch requests", [&] {
    for (uint64_t row : rows) requests[owners.owner(row)].push_back(row);
  });
  const std::vector<std::vector<uint64_t>> asked = exchange(comm, requests);
  std::vector<Bytes> replies(ranks);
  cluster::run_local_phase(comm, "dedup: fetch replies", [&] {
    Bytes payload;
    for (int s = 0; s < ranks; ++s) {
      for (uint64_t row : asked[s]) {
        payload.clear();
        encode(local_index(docs, row), payload);
        const uint64_t n = payload.size();
        const char* p = reinterpret_cast<const char*>(&n);
        replies[s].insert(replies[s].end(), p, p + sizeof n);
        replies[s].insert(replies[s].end(), payload.begin(), payload.end());
      }
    }
  });
  std::vector<Bytes> answers = comm.alltoallv(replies);
  replies.clear();
  Fetched out;
  out.begin.reserve(rows.size() + 1);
  size_t total = 0;
  for (const Bytes& a : answers) total += a.size();
  out.data.reserve(total);
  for (Bytes& a : answers) {  // sorted rows: owners increase with rank, so order matches
    size_t at = 0;
    while (at < a.size()) {
      uint64_t n = 0;
      std::memcpy(&n, a.data() + at, sizeof n);
      at += sizeof n;
      out.begin.push_back(out.data.size());
      out.data.insert(out.data.end(), a.begin() + static_cast<std::ptrdiff_t>(at),
                      a.begin() + static_cast<std::ptrdiff_t>(at + n));
      at += n;
    }
    Bytes().swap(a);
  }
  out.begin.push_back(out.data.size());
  if (out.begin.size() != rows.size() + 1)
    throw std::logic_error("dedup: fetch returned " + std::to_string(out.begin.size() - 1) +
                           " payloads for " + std::to_string(rows.size()) + " rows");
  return out;
}

// Collective: the label (a row) of each of `rows`, from their owners.
std::vector<uint64_t> fetch_labels(Comm& comm, const RowOwners& owners,
                                   const std::vector<DocRef>& docs,
                                   const std::vector<uint64_t>& labels,
                                   const std::vector<uint64_t>& rows) {
  const Fetched f = fetch(comm, owners, docs, rows, [&](size_t i, Bytes& out) {
    const char* p = reinterpret_cast<const char*>(&labels[i]);
    out.insert(out.end(), p, p + sizeof(uint64_t));
  });
  std::vector<uint64_t> out(rows.size());
  for (size_t k = 0; k < rows.size(); ++k) std::memcpy(&out[k], f.at(k), sizeof(uint64_t));
  return out;
}

// Stable LSD radix sort of `items` by key(item) (uint64), 16 bits a pass; `scratch` is reused.
template <class T, class Key>
void radix_sort(std::vector<T>& items, std::vector<T>& scratch, Key key) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (items.size() < 2048) {
    std::stable_sort(items.begin(), items.end(),
                     [&](const T& a, const T& b) { return key(a) < key(b); });
    return;
  }
  scratch.resize(items.size());
  std::vector<size_t> count(1 << 16);
  for (int shift = 0; shift < 64; shift += 16) {
    std::fill(count.begin(), count.end(), 0);
    for (const T& x : items) ++count[(key(x) >> shift) & 0xffff];
    size_t sum = 0;
    for (size_t& c : count) {
      const size_t here = c;
      c = sum;
      sum += here;
    }
    for (const T& x : items) scratch[count[(key(x) >> shift) & 0xffff]++] = x;
    items.swap(scratch);
  }
}

// Merges the sorted runs items[bounds[k], bounds[k+1]) into one sorted range, in place.
template <class T, class Less>
void merge_runs(std::vector<T>& items, std::vector<size_t> bounds, Less less) {
  while (bounds.size() > 2) {
    std::vector<size_t> next = {bounds[0]};
    for (size_t k = 0; k + 2 < bounds.size(); k += 2) {
      std::inplace_merge(items.begin() + static_cast<std::ptrdiff_t>(bounds[k]),
                         items.begin() + static_cast<std::ptrdiff_t>(bounds[k + 1]),
                         items.begin() + static_cast<std::ptrdiff_t>(bounds[k + 2]), less);
      next.push_back(bounds[k + 2]);
    }
    if (bounds.size() % 2 == 0) next.push_back(bounds.back());
    bounds.swap(next);
  }
}

void sort_unique(std::vector<uint64_t>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

size_t position(const std::vector<uint64_t>& sorted, uint64_t value) {
  return static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), value) -
                             sorted.begin());
}

// ---- input checks ---------------------------------------------------------------------------

void check_docs(RowRange range, const std::vector<DocRef>& docs) {
  for (size_t i = 0; i < docs.size(); ++i) {
    const DocRef& d = docs[i];
    if (static_cast<int64_t>(d.row) < range.begin || static_cast<int64_t>(d.row) >= range.end ||
        d.row > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      throw std::invalid_argument("document " + std::to_string(i) + ": row " +
                                  std::to_string(d.row) + " lies outside this rank's range [" +
                                  std::to_string(range.begin) + ", " +
                                  std::to_string(range.end) + ")");
    if (i > 0 && docs[i - 1].row >= d.row)
      throw std::invalid_argument("documents are not sorted by strictly increasing row (row " +
                                  std::to_string(d.row) + " after row " +
                                  std::to_string(docs[i - 1].row) + ")");
    if (!std::isfinite(d.keep_score))
      throw std::invalid_argument("row " + std::to_string(d.row) +
                                  ": keep score is not a finite number");
  }
}

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

struct HashGroup {  // one rank's documents with one exact hash
  uint64_t lo, hi;
  uint64_t min_row;
  uint64_t best_row;
  double best_score;
  uint64_t count;
};
struct HashVerdict {  // the owner's decision for one hash
  uint64_t lo, hi;
  uint64_t cluster;
  uint64_t representative;
};
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

// ---- LSH parameters -------------------------------------------------------------------------

// Integral of f over [a, b]: composite 8-point Gauss-Legendre on 64 panels (far below the
// differences between candidate (b, r) pairs; scipy's quad agrees to ~1e-12).
double integrate(const std::function<double(double)>& f, double a, double b) {
  static const double x[4] = {0.1834346424956498, 0.5255324099163290, 0.7966664774136267,
                              0.9602898564975363};
  static const double w[4] = {0.3626837833783620, 0.3137066458778873, 0.2223810344533745,
                              0.1012285362903763};
  const int panels = 64;
  const double h = (b - a) / panels;
  double sum = 0.0;
  for (int p = 0; p < panels; ++p) {
    const double mid = a + (p + 0.5) * h, half = 0.5 * h;
    for (int k = 0; k < 4; ++k)
      sum += w[k] * half * (f(mid - half * x[k]) + f(mid + half * x[k]));
  }
  return sum;
}

}  // namespace

LshParams optimal_lsh_params(double threshold, int num_perm) {
  if (!(threshold > 0.0 && threshold < 1.0))
    throw std::invalid_argument("dedup.threshold must lie in (0, 1), got " +
                                std::to_string(threshold));
  if (num_perm < 1)
    throw std::invalid_argument("dedup.num_perm must be >= 1, got " + std::to_string(num_perm));
  LshParams best;
  best.threshold = threshold;
  best.num_perm = num_perm;
  double min_error = std::numeric_limits<double>::infinity();
  for (int b = 1; b <= num_perm; ++b) {
    for (int r = 1; r <= num_perm / b; ++r) {
      const double fb = b, fr = r;
      const double fp = integrate(
          [&](double s) { return 1.0 - std::pow(1.0 - std::pow(s, fr), fb); }, 0.0, threshold);
      const double fn = integrate(
          [&](double s) { return std::pow(1.0 - std::pow(s, fr), fb); }, threshold, 1.0);
      const double error = 0.5 * fp + 0.5 * fn;
      if (error < min_error) {
        min_error = error;
        best.bands = b;
        best.rows = r;
      }
    }
  }
  return best;
}

std::vector<Verdict> exact_duplicates(Comm& comm, RowRange range,
                                      const std::vector<DocRef>& docs,
                                      const std::vector<Hash128>& hashes) {
  const int ranks = comm.size();
  cluster::run_local_phase(comm, "dedup: exact duplicates input", [&] {
    check_docs(range, docs);
    if (hashes.size() != docs.size())
      throw std::invalid_argument("exact dedup: " + std::to_string(hashes.size()) +
                                  " hashes for " + std::to_string(docs.size()) + " documents");
  });
  const RowOwners owners(comm, range);  // checks the ranges on all ranks

  // This rank's documents grouped by hash; one HashGroup per hash to its owner.
  std::vector<size_t> order(docs.size());
  std::vector<std::vector<HashGroup>> outgoing(ranks);
  auto by_hash = [&](size_t a, size_t b) {
    return hashes[a].lo != hashes[b].lo ? hashes[a].lo < hashes[b].lo
                                        : hashes[a].hi < hashes[b].hi ||
                                              (hashes[a].hi == hashes[b].hi && a < b);
  };
  auto same_hash = [&](size_t a, size_t b) {
    return hashes[a].lo == hashes[b].lo && hashes[a].hi == hashes[b].hi;
  };
  cluster::run_local_phase(comm, "dedup: exact duplicates group", [&] {
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::sort(order.begin(), order.end(), by_hash);
    for (size_t g = 0; g < order.size();) {
      const size_t first = order[g];
      HashGroup group{hashes[first].lo, hashes[first].hi, docs[first].row, docs[first].row,
                      docs[first].keep_score, 1};
      size_t e = g + 1;
      for (; e < order.size() && same_hash(order[e], first); ++e) {
        const DocRef& d = docs[order[e]];
        ++group.count;
        group.min_row = std::min(group.min_row, d.row);
        if (keeps_over(d.keep_score, d.row, group.best_score, group.best_row)) {
          group.best_row = d.row;
          group.best_score = d.keep_score;
        }
      }
      outgoing[key_owner(group.lo ^ mix64(group.hi), ranks)].push_back(group);
      g = e;
    }
  });
  std::vector<std::vector<HashGroup>> received = exchange(comm, outgoing);

  // Owner: one decision per hash held by >= 2 documents, sent to every contributing rank.
  std::vector<std::vector<HashVerdict>> decisions(ranks);
  cluster::run_local_phase(comm, "dedup: exact duplicates decide", [&] {
    struct Entry {
      HashGroup group;
      int source;
    };
    std::vector<Entry> entries;
    for (int s = 0; s < ranks; ++s)
      for (const HashGroup& g : received[s]) entries.push_back({g, s});
    received.clear();
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return a.group.lo != b.group.lo ? a.group.lo < b.group.lo : a.group.hi < b.group.hi;
    });
    for (size_t g = 0; g < entries.size();) {
      size_t e = g + 1;
      while (e < entries.size() && entries[e].group.lo == entries[g].group.lo &&
             entries[e].group.hi == entries[g].group.hi)
        ++e;
      HashGroup total = entries[g].group;
      for (size_t k = g + 1; k < e; ++k) {
        const HashGroup& part = entries[k].group;
        total.count += part.count;
        total.min_row = std::min(total.min_row, part.min_row);
        if (keeps_over(part.best_score, part.best_row, total.best_score, total.best_row)) {
          total.best_row = part.best_row;
          total.best_score = part.best_score;
        }
      }
      if (total.count >= 2)
        for (size_t k = g; k < e; ++k)
        decisions[entries[k].source].push_back(
            {total.lo, total.hi, total.min_row, total.best_row});
      g = e;
    }
  });
  std::vector<std::vector<HashVerdict>> answers = exchange(comm, decisions);

  std::vector<Verdict> verdicts;
  cluster::run_local_phase(comm, "dedup: exact duplicates verdicts", [&] {
    std::vector<HashVerdict> all;
    for (auto& a : answers) all.insert(all.end(), a.begin(), a.end());
    answers.clear();
    std::sort(all.begin(), all.end(), [](const HashVerdict& a, const HashVerdict& b) {
      return a.lo != b.lo ? a.lo < b.lo : a.hi < b.hi;
    });
    for (size_t i = 0; i < docs.size(); ++i) {
      const auto it = std::lower_bound(
          all.begin(), all.end(), hashes[i], [](const HashVerdict& v, const Hash128& h) {
            return v.lo != h.lo ? v.lo < h.lo : v.hi < h.hi;
          });
      if (it == all.end() || it->lo != hashes[i].lo || it->hi != hashes[i].hi) continue;
      if (it->representative != docs[i].row)
        verdicts.push_back({docs[i].row, it->cluster, it->representative, 1.0});
    }
  });
  return verdicts;
}

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
