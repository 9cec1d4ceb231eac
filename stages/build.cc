#include "stages/build.h"

#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

#include "stages/batches.h"
#include "stages/block_parallel.h"
#include "stages/ivf_index.h"

namespace sf::stages {

std::vector<cluster::RowRange> split_rows(cluster::RowRange range, int64_t unit_rows) {
  unit_rows = std::max<int64_t>(1, (unit_rows + kBlockRows - 1) / kBlockRows) * kBlockRows;
  std::vector<cluster::RowRange> units;
  for (int64_t row = range.begin; row < range.end;) {
    const int64_t end = std::min((row / unit_rows + 1) * unit_rows, range.end);
    units.push_back({row, end});
    row = end;
  }
  return units;
}

AddPlan plan_add(int64_t batch_rows, int64_t piece_rows, int dim, uint64_t code_size,
                 int64_t nlist, uint64_t index_bytes, int threads, uint64_t budget_bytes) {
  AddPlan plan;
  const auto d = static_cast<uint64_t>(std::max(1, dim));
  // A block's transformed rows and residuals, and its distances to up to 1024 centroids at a
  // time (FAISS's exhaustive search block).
  const uint64_t scratch =
      kBlockRows * (2 * d * 4 + static_cast<uint64_t>(std::clamp<int64_t>(nlist, 1, 1024)) * 4);
  plan.fixed_bytes = 2 * index_bytes + static_cast<uint64_t>(std::max(1, threads)) * scratch;
  plan.batch_row_bytes = d * 4 + 8 + code_size;
  plan.piece_row_bytes = 3 * (code_size + 8);
  plan.need_bytes = plan.fixed_bytes + kBlockRows * (plan.batch_row_bytes + plan.piece_row_bytes);
  plan.batch_rows = std::max<int64_t>(1, batch_rows);
  plan.piece_rows = std::max<int64_t>(1, piece_rows);
  if (budget_bytes == 0) return plan;
  const uint64_t half = budget_bytes / 2;
  const uint64_t room = half > plan.fixed_bytes ? half - plan.fixed_bytes : 0;
  // The most rows of `row_bytes` within `bytes`: `rows` when its blocks fit, else whole blocks.
  const auto bound = [](int64_t rows, uint64_t row_bytes, uint64_t bytes) {
    const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
    const auto fit_blocks = static_cast<int64_t>(bytes / (row_bytes * kBlockRows));
    return blocks <= fit_blocks ? rows : std::max<int64_t>(1, fit_blocks) * kBlockRows;
  };
  plan.batch_rows = bound(plan.batch_rows, plan.batch_row_bytes, room / 4);
  plan.piece_rows = bound(plan.piece_rows, plan.piece_row_bytes, room - room / 4);
  return plan;
}

void add_rows(faiss::Index& index, int64_t first, int64_t count, const float* x) {
  if (count <= 0) return;
  faiss::IndexIVF& ivf = ivf_of(index, "add_rows");
  if (ivf.direct_map.type != faiss::DirectMap::NoMap)
    throw std::logic_error("add_rows: IVF indexes with a direct map are not supported");
  const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(&index);
  const int64_t d_in = index.d;
  const size_t code_size = ivf.code_size;
  // The global blocks of kBlockRows rows that [first, first + count) overlaps.
  std::vector<int64_t> starts;  // offsets into x; starts.back() == count
  for (int64_t off = 0; off < count; off += std::min(count - off, kBlockRows - (first + off) % kBlockRows))
    starts.push_back(off);
  const auto blocks = static_cast<int64_t>(starts.size());
  starts.push_back(count);
  std::vector<faiss::Index::idx_t> list_nos(static_cast<size_t>(count));
  std::vector<uint8_t> codes(static_cast<size_t>(count) * code_size);
  // What IndexPreTransform/IndexIVF::add_with_ids do (apply_chain, quantizer->assign,
  // encode_vectors: the same codes), but one global block per call on one thread with
  // single-threaded BLAS: FAISS would let OpenBLAS split each GEMM over all threads, and the
  // transformed rows and coarse distances would depend on the thread count
  // (stages/block_parallel.h).
  parallel_blocks(blocks, [&](int64_t b, int) {
    const int64_t off = starts[b], n = starts[b + 1] - off;
    const float* xb = x + off * d_in;
    std::unique_ptr<const float[]> transformed;
    if (pt != nullptr) {
      const float* xt = pt->apply_chain(n, xb);
      if (xt != xb) transformed.reset(xt);
      xb = xt;
    }
    ivf.quantizer->assign(n, xb, list_nos.data() + off);
    ivf.encode_vectors(n, xb, list_nos.data() + off, codes.data() + off * code_size, false);
  });
  // Appended in id order, as IndexIVF::add_core does: each list stays sorted by id.
  for (int64_t i = 0; i < count; ++i) {
    const faiss::Index::idx_t list_no = list_nos[static_cast<size_t>(i)];
    if (list_no >= 0)
      ivf.invlists->add_entry(static_cast<size_t>(list_no), first + i, codes.data() + i * code_size);
  }
  set_ntotal(index, index.ntotal + count);
}

int64_t add_shard(faiss::Index& index, io::VectorCorpus& corpus, cluster::RowRange range,
                  int64_t batch_rows, const ProgressFn& progress) {
  for_each_batch(
      corpus, range, batch_rows,
      [&](int64_t first, int64_t count, const float* x) { add_rows(index, first, count, x); },
      progress, "build: add");
  return range.size();
}

}  // namespace sf::stages
