#include "stages/dedup/semantic.h"

#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace sf::stages::dedup {
namespace {

// A member as shipped to its list's rank; its vector travels beside it, in the same order.
struct Member {
  uint64_t row;
  int64_t list;
  double keep_score;
  int32_t source;  // the rank that owns the document
};

// A verdict on its way back to the document's rank.
struct Reply {
  uint64_t row;
  uint64_t representative;
  double similarity;   // cosine to the representative
  double best;         // largest cosine to an earlier member (decides removal)
};

// Lists to ranks, largest expected work (size^2) first, each to the least loaded rank
// (ties: the lower rank). Every rank computes the same plan.
std::vector<int> place_lists(const std::vector<int64_t>& sizes, int ranks) {
  std::vector<int64_t> order(sizes.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return sizes[a] > sizes[b]; });
  std::vector<double> load(static_cast<size_t>(ranks), 0.0);
  std::vector<int> owner(sizes.size(), 0);
  for (int64_t list : order) {
    if (sizes[list] == 0) break;
    const int r = static_cast<int>(std::min_element(load.begin(), load.end()) - load.begin());
    owner[list] = r;
    load[r] += static_cast<double>(sizes[list]) * static_cast<double>(sizes[list]);
  }
  return owner;
}

// Rounds: lists in id order, a new round whenever the next list would take some rank's bytes
// in (members of the lists it owns) or out (its documents of the round's lists) over `budget`;
// a list over the budget goes alone. `counts` is list-major: counts[l * ranks + s] members of
// list l on rank s. Every rank computes the same plan. Returns each list's round (-1: empty).
std::vector<int64_t> plan_rounds(const std::vector<int64_t>& counts, const std::vector<int>& owner,
                                 int ranks, size_t record_bytes, size_t budget,
                                 int64_t* rounds) {
  const size_t nlist = owner.size();
  std::vector<int64_t> round(nlist, -1);
  std::vector<size_t> in(static_cast<size_t>(ranks), 0), out(static_cast<size_t>(ranks), 0);
  int64_t current = 0;
  bool empty = true;
  for (size_t l = 0; l < nlist; ++l) {
    const int64_t* c = counts.data() + l * static_cast<size_t>(ranks);
    int64_t size = 0;
    for (int s = 0; s < ranks; ++s) size += c[s];
    if (size == 0) continue;
    bool fits = in[owner[l]] + static_cast<size_t>(size) * record_bytes <= budget;
    for (int s = 0; s < ranks && fits; ++s)
      fits = out[s] + static_cast<size_t>(c[s]) * record_bytes <= budget;
    if (!fits && !empty) {
      ++current;
      std::fill(in.begin(), in.end(), 0);
      std::fill(out.begin(), out.end(), 0);
    }
    in[owner[l]] += static_cast<size_t>(size) * record_bytes;
    for (int s = 0; s < ranks; ++s) out[s] += static_cast<size_t>(c[s]) * record_bytes;
    round[l] = current;
    empty = false;
  }
  *rounds = empty ? 0 : current + 1;
  return round;
}

}  // namespace

int64_t nearest_earlier(const float* rows, size_t n, int dim, float* best, int64_t* nearest) {
  const size_t d = static_cast<size_t>(dim);
  std::fill(best, best + n, -std::numeric_limits<float>::infinity());
  std::fill(nearest, nearest + n, int64_t{-1});
  std::vector<float> sims(kSemanticTile);
  int64_t pairs = 0;
  for (size_t t0 = 0; t0 < n; t0 += kSemanticTile) {
    const size_t t1 = std::min(n, t0 + kSemanticTile);
    // The tile against every row before it (BLAS).
    if (t0 > 0) faiss::knn_inner_product(rows + t0 * d, rows, d, t1 - t0, t0, 1, best + t0, nearest + t0);
    // Inside the tile: each row against the earlier rows of its tile (SIMD).
    for (size_t j = std::max<size_t>(t0, 1); j < t1; ++j) {
      const size_t m = j - t0;
      if (m > 0) {
        faiss::fvec_inner_products_ny(sims.data(), rows + j * d, rows + t0 * d, d, m);
        for (size_t i = 0; i < m; ++i)
          if (sims[i] > best[j]) {
            best[j] = sims[i];
            nearest[j] = static_cast<int64_t>(t0 + i);
          }
      }
      pairs += static_cast<int64_t>(j);
    }
  }
  return pairs;
}

std::vector<SemanticVerdict> semantic_duplicates(cluster::Comm& comm,
                                                 const std::vector<SemanticDoc>& docs,
                                                 const float* vectors, int dim,
                                                 const SemanticOptions& options,
                                                 SemanticStats* stats) {
  const size_t d = static_cast<size_t>(std::max(dim, 0));
  return semantic_duplicates(
      comm, docs,
      [&](int64_t first, int64_t count, float* out) {
        std::memcpy(out, vectors + static_cast<size_t>(first) * d,
                    static_cast<size_t>(count) * d * sizeof(float));
      },
      dim, options, stats);
}

std::vector<SemanticVerdict> semantic_duplicates(cluster::Comm& comm,
                                                 const std::vector<SemanticDoc>& docs,
                                                 const SemanticRowReader& read_rows, int dim,
                                                 const SemanticOptions& options,
                                                 SemanticStats* stats) {
  if (dim < 1) throw std::invalid_argument("semantic_duplicates: dim must be >= 1");
  const int ranks = comm.size();
  const size_t d = static_cast<size_t>(dim);
  const size_t record = sizeof(Member) + d * sizeof(float);  // a member and its vector, shipped

  // Global list sizes (per list and rank), the placement and the rounds.
  int64_t max_list = -1;
  cluster::run_local_phase(comm, "semantic dedup", [&] {
    for (const SemanticDoc& doc : docs) {
      if (doc.list < 0)
        throw std::invalid_argument("row " + std::to_string(doc.row) + " has no list (" +
                                    std::to_string(doc.list) + ")");
      max_list = std::max(max_list, doc.list);
    }
  });
  int64_t negated = -max_list;
  comm.allreduce_min(&negated, 1);
  const size_t nlist = static_cast<size_t>(std::max<int64_t>(-negated + 1, 0));
  std::vector<int64_t> counts(nlist * static_cast<size_t>(ranks), 0);  // [list][rank]
  for (const SemanticDoc& doc : docs)
    ++counts[static_cast<size_t>(doc.list) * ranks + static_cast<size_t>(comm.rank())];
  comm.allreduce_sum(counts.data(), counts.size());  // each rank filled only its own column
  std::vector<int64_t> sizes(nlist, 0);
  for (size_t l = 0; l < nlist; ++l)
    for (int s = 0; s < ranks; ++s) sizes[l] += counts[l * ranks + s];
  const std::vector<int> owner = place_lists(sizes, ranks);
  int64_t rounds = 0;
  const std::vector<int64_t> round_of =
      plan_rounds(counts, owner, ranks, record, std::max<size_t>(options.round_bytes, 1), &rounds);
  std::vector<int64_t>().swap(counts);

  // This rank's documents by round (stable: in their order within a round).
  std::vector<size_t> by_round(docs.size());
  std::iota(by_round.begin(), by_round.end(), 0);
  std::stable_sort(by_round.begin(), by_round.end(), [&](size_t a, size_t b) {
    return round_of[static_cast<size_t>(docs[a].list)] < round_of[static_cast<size_t>(docs[b].list)];
  });

  SemanticStats local_stats;
  local_stats.eps = options.report_eps;
  if (std::find(local_stats.eps.begin(), local_stats.eps.end(), options.eps) == local_stats.eps.end())
    local_stats.eps.push_back(options.eps);
  local_stats.removed.assign(local_stats.eps.size(), 0);
  const double threshold = 1.0 - options.eps;
  std::vector<std::vector<Reply>> back(static_cast<size_t>(ranks));  // removed, to their ranks
  int64_t pairs = 0;
  size_t next = 0;  // into by_round
  for (int64_t r = 0; r < rounds; ++r) {
    // Members and their vectors of this round's lists to the lists' ranks: records of a
    // Member followed by its dim floats. Members of this rank's own lists are not copied:
    // they are read from `vectors` in place.
    std::vector<cluster::Bytes> send(static_cast<size_t>(ranks));
    const size_t first = next;
    std::vector<size_t> bytes_to(static_cast<size_t>(ranks), 0);
    while (next < by_round.size() &&
           round_of[static_cast<size_t>(docs[by_round[next]].list)] == r)
      bytes_to[owner[static_cast<size_t>(docs[by_round[next++]].list)]] += record;
    for (int s = 0; s < ranks; ++s)
      if (s != comm.rank()) send[s].reserve(bytes_to[s]);
    // This round's own documents' vectors (increasing doc indices: read in runs).
    std::vector<float> vectors((next - first) * d);
    cluster::run_local_phase(comm, "semantic dedup: read vectors", [&] {
      for (size_t k = first; k < next;) {
        size_t run = 1;
        while (k + run < next && by_round[k + run] == by_round[k] + run) ++run;
        read_rows(static_cast<int64_t>(by_round[k]), static_cast<int64_t>(run),
                  vectors.data() + (k - first) * d);
        k += run;
      }
    });
    std::vector<Member> members;
    std::vector<const char*> member_vectors;  // into `vectors` or `received`
    for (size_t k = first; k < next; ++k) {
      const size_t i = by_round[k];
      const Member m{docs[i].row, docs[i].list, docs[i].keep_score, comm.rank()};
      const int to = owner[static_cast<size_t>(docs[i].list)];
      const char* vp = reinterpret_cast<const char*>(vectors.data() + (k - first) * d);
      if (to == comm.rank()) {
        members.push_back(m);
        member_vectors.push_back(vp);
        continue;
      }
      const char* mp = reinterpret_cast<const char*>(&m);
      send[to].insert(send[to].end(), mp, mp + sizeof(Member));
      send[to].insert(send[to].end(), vp, vp + d * sizeof(float));
    }
    std::vector<cluster::Bytes> received = comm.alltoallv(send);
    std::vector<cluster::Bytes>().swap(send);
    for (const cluster::Bytes& from : received)
      for (size_t off = 0; off + record <= from.size(); off += record) {
        Member m;
        std::memcpy(&m, from.data() + off, sizeof(Member));
        members.push_back(m);
        member_vectors.push_back(from.data() + off + sizeof(Member));
      }

    // Group by list; inside a list, the keep order.
    std::vector<size_t> order(members.size());
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
      const Member& x = members[a];
      const Member& y = members[b];
      if (x.list != y.list) return x.list < y.list;
      if (x.keep_score != y.keep_score) return x.keep_score > y.keep_score;
      return x.row < y.row;
    });
    std::vector<size_t> list_starts;
    for (size_t i = 0; i < order.size(); ++i)
      if (i == 0 || members[order[i]].list != members[order[i - 1]].list) list_starts.push_back(i);
    list_starts.push_back(order.size());

    std::vector<Reply> replies(members.size());
    const int64_t lists_here = static_cast<int64_t>(list_starts.size()) - 1;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : pairs)
    for (int64_t l = 0; l < lists_here; ++l) {
      const size_t begin = list_starts[l], n = list_starts[l + 1] - begin;
      std::vector<float> block(n * d);  // the list's vectors in keep order, contiguous
      for (size_t i = 0; i < n; ++i)
        std::memcpy(block.data() + i * d, member_vectors[order[begin + i]], d * sizeof(float));
      std::vector<float> best(n);
      std::vector<int64_t> nearest(n);
      pairs += nearest_earlier(block.data(), n, dim, best.data(), nearest.data());
      for (size_t j = 0; j < n; ++j) {
        const Member& m = members[order[begin + j]];
        Reply& reply = replies[order[begin + j]];
        reply.row = m.row;
        reply.best = best[j];
        reply.representative = m.row;
        reply.similarity = 1.0;
        if (best[j] >= threshold) {
          size_t rep = static_cast<size_t>(nearest[j]);
          while (best[rep] >= threshold) rep = static_cast<size_t>(nearest[rep]);  // to a kept one
          reply.representative = members[order[begin + rep]].row;
          reply.similarity =
              faiss::fvec_inner_product(block.data() + j * d, block.data() + rep * d, d);
        }
      }
    }

    // Counts at every eps; the removed documents' verdicts wait for the way back.
    for (const Reply& reply : replies)
      for (size_t e = 0; e < local_stats.eps.size(); ++e)
        local_stats.removed[e] += reply.best >= 1.0 - local_stats.eps[e] ? 1 : 0;
    for (size_t i = 0; i < members.size(); ++i)
      if (replies[i].best >= threshold) back[members[i].source].push_back(replies[i]);
  }

  // The verdicts back to the documents' ranks.
  std::vector<std::vector<Reply>> mine = cluster::exchange(comm, back);
  std::vector<SemanticVerdict> verdicts;
  for (const auto& from : mine)
    for (const Reply& reply : from) verdicts.push_back({reply.row, reply.representative, reply.similarity});
  std::sort(verdicts.begin(), verdicts.end(),
            [](const SemanticVerdict& a, const SemanticVerdict& b) { return a.row < b.row; });

  comm.allreduce_sum(local_stats.removed.data(), local_stats.removed.size());
  local_stats.pairs = comm.sum(pairs);
  for (int64_t size : sizes) {
    local_stats.lists += size > 0 ? 1 : 0;
    local_stats.largest_list = std::max(local_stats.largest_list, size);
  }
  if (stats != nullptr) *stats = std::move(local_stats);
  return verdicts;
}

}  // namespace sf::stages::dedup
