// The semdedup stage of `run` (pipeline/text_index.h): each embedded vector assigned to its
// inverted list of the trained index, semantic duplicates found inside each list
// (stages/dedup/semantic.h), this rank's verdicts checkpointed.
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/utils/distances.h>

#include <algorithm>
#include <memory>

#include "io/array_file.h"
#include "io/atomic_file.h"
#include "stages/batches.h"
#include "stages/ivf_index.h"
#include "pipeline/text_index.h"

namespace sf::pipeline {

namespace dd = stages::dedup;

void SemanticDedupStage::configure(runtime::StageOptions& options) {
  const runtime::SemDedupConfig& s = options.config().semdedup;
  options_.eps = options.read("semdedup.eps", s.eps);
  options_.report_eps = options.read("semdedup.report_eps", s.report_eps);
}

void SemanticDedupStage::run(cluster::Comm& comm, const runtime::StageContext&) {
  // This rank's block of the embeddings, read in batches twice: to assign each row its list,
  // then as semantic_duplicates' rounds need them.
  io::VectorCorpus& vectors = *text_.embeddings;
  const std::vector<SurvivorRef>& refs = text_.refs;
  const cluster::RowRange block = stages::rank_rows(text_.embedded, comm.rank(), comm.size());
  const auto d = static_cast<size_t>(text_.dim);
  faiss::Index* index = text_.build.index.get();
  const auto n = static_cast<int64_t>(refs.size());
  std::vector<faiss::Index::idx_t> lists(static_cast<size_t>(n), 0);
  cluster::run_local_phase(comm, "assign", [&] {
    // Batches of a multiple of FAISS's 4096-query blocks, the last one of at least
    // faiss::distance_compute_blas_threshold rows (or all): the quantizer's search sees the
    // same blocks, all on BLAS, as one call over the whole block would, so the lists are the
    // same bytes. At most kAssignRows + threshold - 1 rows are held (a last batch of up to
    // 2 x kAssignRows rows was the stage's peak at d = 512).
    constexpr int64_t kAssignRows = 16384;
    const int64_t last_min = std::max(faiss::distance_compute_blas_threshold, 1);
    std::vector<float> rows;
    for (int64_t lo = 0, m = 0; lo < n; lo += m) {
      m = n - lo < kAssignRows + last_min ? n - lo : kAssignRows;
      rows.resize(static_cast<size_t>(m) * d);
      vectors.read(block.begin + lo, m, rows.data());
      const float* x = rows.data();
      std::unique_ptr<const float[]> transformed;
      if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(index)) {
        const float* y = pt->apply_chain(m, x);
        if (y != x) transformed.reset(y);
        x = y;
      }
      stages::find_ivf(index)->quantizer->assign(m, x, lists.data() + lo);
    }
  });
  std::vector<dd::SemanticDoc> docs(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) docs[i] = {refs[i].row, lists[i], refs[i].keep_score};
  std::vector<faiss::Index::idx_t>().swap(lists);
  text_.semantic.clear();
  text_.semantic_stats = {};
  const auto read_rows = [&](int64_t first, int64_t count, float* out) {
    vectors.read(block.begin + first, count, out);
  };
  for (const auto& v : dd::semantic_duplicates(comm, docs, read_rows, text_.dim, options_,
                                               &text_.semantic_stats))
    text_.semantic.push_back({v.row, v.representative, v.similarity});
}

runtime::StageOutputs SemanticDedupStage::save(cluster::Comm& comm,
                                                const runtime::StageContext& context) {
  const dd::SemanticStats& stats = text_.semantic_stats;
  return runtime::save_rank_files(
      comm, context, kSemanticDir,
      [&](const std::string& tmp) {
        io::ArrayFileWriter out(tmp, "run-semantic-verdicts", kSemanticFormatVersion);
        out.write("verdicts", text_.semantic);
        out.close();
      },
      {{"eps", stats.eps},
       {"removed", stats.removed},
       {"lists", stats.lists},
       {"largest_list", stats.largest_list},
       {"pairs", stats.pairs}});
}

void SemanticDedupStage::load(cluster::Comm& comm, const runtime::StageContext& context,
                              const nlohmann::json& info) {
  cluster::run_local_phase(comm, "semdedup: read checkpoint", [&] {
    dd::SemanticStats& stats = text_.semantic_stats;
    stats.eps = info.at("eps").get<std::vector<double>>();
    stats.removed = info.at("removed").get<std::vector<int64_t>>();
    stats.lists = info.at("lists").get<int64_t>();
    stats.largest_list = info.at("largest_list").get<int64_t>();
    stats.pairs = info.at("pairs").get<int64_t>();
    io::ArrayFileReader in(context.checkpoints.path(runtime::rank_file(kSemanticDir, comm.rank())),
                           "run-semantic-verdicts", kSemanticFormatVersion);
    text_.semantic = in.read<SemanticDuplicate>("verdicts");
    in.close();
  });
}

}  // namespace sf::pipeline
