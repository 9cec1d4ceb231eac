#include "stages/dedup/semantic.h"

#include <faiss/utils/distances.h>
#include <omp.h>

#include <algorithm>
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

}  // namespace

std::vector<SemanticVerdict> semantic_duplicates(cluster::Comm& comm,
                                                 const std::vector<SemanticDoc>& docs,
                                                 const float* vectors, int dim,
                                                 const SemanticOptions& options,
                                                 SemanticStats* stats) {
  if (dim < 1) throw std::invalid_argument("semantic_duplicates: dim must be >= 1");
  const int ranks = comm.size();
  const size_t d = static_cast<size_t>(dim);

  // Global list sizes, then the placement.
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
  const int64_t nlist = -negated + 1;
  std::vector<int64_t> sizes(static_cast<size_t>(std::max<int64_t>(nlist, 0)), 0);
  for (const SemanticDoc& doc : docs) ++sizes[static_cast<size_t>(doc.list)];
  comm.allreduce_sum(sizes.data(), sizes.size());
  const std::vector<int> owner = place_lists(sizes, ranks);

  // Members and their vectors to the lists' ranks.
  std::vector<std::vector<Member>> out_members(static_cast<size_t>(ranks));
  std::vector<std::vector<float>> out_vectors(static_cast<size_t>(ranks));
  for (size_t i = 0; i < docs.size(); ++i) {
    const int to = owner[static_cast<size_t>(docs[i].list)];
    out_members[to].push_back({docs[i].row, docs[i].list, docs[i].keep_score, comm.rank()});
    out_vectors[to].insert(out_vectors[to].end(), vectors + i * d, vectors + (i + 1) * d);
  }
  std::vector<std::vector<Member>> in_members = cluster::exchange(comm, out_members);
  std::vector<std::vector<float>> in_vectors = cluster::exchange(comm, out_vectors);
  std::vector<Member> members;
  std::vector<const float*> member_vectors;
  for (int s = 0; s < ranks; ++s) {
    for (size_t i = 0; i < in_members[s].size(); ++i) {
      members.push_back(in_members[s][i]);
      member_vectors.push_back(in_vectors[s].data() + i * d);
    }
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

  const double threshold = 1.0 - options.eps;
  std::vector<Reply> replies(members.size());
  int64_t pairs = 0;
  const int64_t lists_here = static_cast<int64_t>(list_starts.size()) - 1;
#pragma omp parallel for schedule(dynamic, 1) reduction(+ : pairs)
  for (int64_t l = 0; l < lists_here; ++l) {
    const size_t begin = list_starts[l], n = list_starts[l + 1] - begin;
    std::vector<float> block(n * d);  // the list's vectors in keep order, contiguous
    for (size_t i = 0; i < n; ++i)
      std::copy_n(member_vectors[order[begin + i]], d, block.data() + i * d);
    std::vector<float> sims(n);
    std::vector<int64_t> nearest(n, -1);  // most similar earlier member
    std::vector<double> best(n, -std::numeric_limits<double>::infinity());
    // Tiles of kTile rows: each row's best among the members before its tile in one
    // knn_inner_product call (BLAS for the bulk of the pairs), then among the earlier rows of
    // its own tile (SIMD inner products). Shapes depend only on the list size, so the result
    // is the same for any number of ranks. Memory: O(kTile) per thread beyond the list.
    constexpr size_t kTile = 256;
    std::vector<float> tile_best(kTile);
    std::vector<int64_t> tile_nearest(kTile);
    for (size_t t0 = 0; t0 < n; t0 += kTile) {
      const size_t t1 = std::min(n, t0 + kTile);
      if (t0 > 0) {
        faiss::knn_inner_product(block.data() + t0 * d, block.data(), d, t1 - t0, t0, 1,
                                 tile_best.data(), tile_nearest.data());
        for (size_t j = t0; j < t1; ++j) {
          best[j] = tile_best[j - t0];
          nearest[j] = tile_nearest[j - t0];
        }
      }
      for (size_t j = std::max<size_t>(t0, 1); j < t1; ++j) {
        const size_t m = j - t0;  // earlier rows of the tile
        if (m > 0) {
          faiss::fvec_inner_products_ny(sims.data(), block.data() + j * d, block.data() + t0 * d,
                                        d, m);
          for (size_t i = 0; i < m; ++i)
            if (sims[i] > best[j]) {
              best[j] = sims[i];
              nearest[j] = static_cast<int64_t>(t0 + i);
            }
        }
        pairs += static_cast<int64_t>(j);
      }
    }
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
        reply.similarity = faiss::fvec_inner_product(block.data() + j * d, block.data() + rep * d, d);
      }
    }
  }

  // Counts at every eps, then the verdicts back to the documents' ranks.
  SemanticStats local_stats;
  local_stats.eps = options.report_eps;
  if (std::find(local_stats.eps.begin(), local_stats.eps.end(), options.eps) == local_stats.eps.end())
    local_stats.eps.push_back(options.eps);
  local_stats.removed.assign(local_stats.eps.size(), 0);
  for (const Reply& reply : replies)
    for (size_t e = 0; e < local_stats.eps.size(); ++e)
      local_stats.removed[e] += reply.best >= 1.0 - local_stats.eps[e] ? 1 : 0;
  std::vector<std::vector<Reply>> back(static_cast<size_t>(ranks));
  for (size_t i = 0; i < members.size(); ++i)
    if (replies[i].best >= threshold) back[members[i].source].push_back(replies[i]);
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
