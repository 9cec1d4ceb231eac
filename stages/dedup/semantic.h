// Semantic dedup (SemDeDup, Abbas et al. 2023) inside the inverted lists of the coarse
// partitioning we build anyway: documents that land in the same list and whose embeddings
// have cosine similarity >= 1 - eps are duplicates.
//
// Within a list, members are ordered by the keep policy (keep_score descending, then row);
// member j is removed when its largest similarity to an EARLIER member is >= 1 - eps (as
// SemDeDup, with the keep order in place of its distance-to-centroid order). Its
// representative is that most similar earlier member, followed to the first kept one. The
// result depends only on list membership and vectors: the same for any number of ranks.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "cluster/comm.h"

namespace sf::stages::dedup {

struct SemanticDoc {
  uint64_t row;       // global row, unique across ranks
  int64_t list;       // its inverted list (coarse assignment), >= 0
  double keep_score;  // keep policy: higher wins, ties -> smaller row
};

struct SemanticOptions {
  double eps = 0.05;                                   // applied: cosine >= 1 - eps
  std::vector<double> report_eps = {0.01, 0.02, 0.05, 0.1, 0.2};  // counted only
  // Lists are shipped to their ranks in rounds: per round, no rank sends or receives more than
  // this many bytes of members and vectors (a list larger than that goes alone). The verdicts
  // do not depend on it.
  size_t round_bytes = size_t{16} << 20;
};

struct SemanticVerdict {  // one local document that is NOT kept
  uint64_t row;
  uint64_t representative;  // the kept document it duplicates
  double similarity;        // cosine to the representative
};

struct SemanticStats {
  std::vector<double> eps;       // report_eps, then the applied eps if not among them
  std::vector<int64_t> removed;  // documents removed at each eps (global)
  int64_t lists = 0;             // non-empty lists
  int64_t largest_list = 0;
  int64_t pairs = 0;             // similarities computed (global)
};

// Collective. `vectors` holds docs.size() x dim floats, L2-normalised (so cosine = inner
// product). Lists are spread over ranks by expected work (size^2); their members (with their
// vectors) go to their ranks in rounds of at most options.round_bytes per rank and direction,
// each round an alltoallv; verdicts come back to the documents' ranks at the end.
// Returns this rank's verdicts at options.eps, sorted by row. REQUIRES: dim >= 1, rows unique.
// Memory per rank beyond the caller's vectors: ~2 x round_bytes of send/receive buffers (the
// alltoallv sends from ours and receives into its own, no packed copies; members of lists
// placed on their own rank are read in place, so none at 1 rank), one list's vectors per
// thread, and 32 bytes per document removed at options.eps.
std::vector<SemanticVerdict> semantic_duplicates(cluster::Comm& comm,
                                                 const std::vector<SemanticDoc>& docs,
                                                 const float* vectors, int dim,
                                                 const SemanticOptions& options,
                                                 SemanticStats* stats = nullptr);
// The same with the vectors read when a round needs them: read_rows(first, count, out) writes
// the vectors of docs[first .. first + count) to out[count x dim] (runs of consecutive docs of
// the round; throws to fail the stage, agreed). Memory: a round's own members' vectors instead
// of all of the caller's (run's semdedup reads them from its embeddings file).
using SemanticRowReader = std::function<void(int64_t first, int64_t count, float* out)>;
std::vector<SemanticVerdict> semantic_duplicates(cluster::Comm& comm,
                                                 const std::vector<SemanticDoc>& docs,
                                                 const SemanticRowReader& read_rows, int dim,
                                                 const SemanticOptions& options,
                                                 SemanticStats* stats = nullptr);

// Local: the kernel of semantic_duplicates, one list. For each row j of the n x dim row-major
// `rows`, its largest inner product with an EARLIER row (best[j]) and which row (nearest[j]);
// row 0 gets -inf and -1. Tiles of kSemanticTile rows: a tile against all rows before it in one
// faiss::knn_inner_product call (BLAS, in blocks of 1024 earlier rows), then the earlier rows of
// its own tile with SIMD inner products; no n x n matrix (O(kSemanticTile x 1024) floats per
// call). Shapes depend only on n, so the result is the same wherever the list is computed.
// Returns the pairs compared, n(n-1)/2. Ties between earlier rows: either may be `nearest`.
constexpr size_t kSemanticTile = 256;
int64_t nearest_earlier(const float* rows, size_t n, int dim, float* best, int64_t* nearest);

}  // namespace sf::stages::dedup
