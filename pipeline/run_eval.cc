// The eval stage of `run` (pipeline/text_index.h): recall of the merged index for a sample of its
// own vectors, against their exact neighbours; eval.json.
#include <algorithm>
#include <cstring>

#include "io/atomic_file.h"
#include "io/index_file.h"
#include "stages/eval.h"
#include "pipeline/eval_recommend.h"
#include "pipeline/eval_report.h"
#include "pipeline/text_index.h"

namespace sf::pipeline {

namespace {

// Collective. See EvalStage. Returns eval.json's content (rank 0; null elsewhere).
nlohmann::json run_eval(cluster::Comm& comm, const runtime::Config& config, faiss::Index& index,
                        io::VectorCorpus& rows, cluster::RowRange range, int64_t indexed, int dim,
                        int threads, const stages::ProgressFn& progress) {
  const int64_t nq = std::min<int64_t>(
      indexed, config.eval.max_queries > 0 ? config.eval.max_queries : 1000);
  std::vector<float> mine;
  cluster::run_local_phase(comm, "eval: queries", [&] {
    for (int64_t q = 0; q < nq; ++q) {
      const int64_t id = q * indexed / nq;
      if (id < range.begin || id >= range.end) continue;
      mine.resize(mine.size() + static_cast<size_t>(dim));
      rows.read(id, 1, mine.data() + mine.size() - static_cast<size_t>(dim));
    }
  });
  std::vector<float> queries;
  {
    const auto* p = reinterpret_cast<const char*>(mine.data());
    for (const auto& part : comm.allgather(cluster::Bytes(p, p + mine.size() * sizeof(float)))) {
      const size_t n = part.size() / sizeof(float);
      queries.resize(queries.size() + n);
      std::memcpy(queries.data() + queries.size() - n, part.data(), part.size());
    }
  }
  const int k = static_cast<int>(std::min<int64_t>(std::max(config.eval.k, 100), indexed));
  const stages::Neighbours truth =
      stages::exact_neighbours(comm, rows, range, queries.data(), nq, k,
                               config.index.metric == "ip", config.input.batch_rows);
  std::vector<stages::EvalPoint> points;
  std::optional<stages::NprobeChoice> choice;
  cluster::run_local_phase(comm, "eval: search", [&] {
    if (comm.rank() != 0) return;
    auto one = cluster::make_serial_comm();  // rank 0 alone holds the merged index
    points = stages::evaluate_index(*one, index, queries.data(), nq, truth, config.eval.k,
                                    config.eval.nprobe, progress);
    choice = recommend_nprobe(*one, config, index, queries.data(), nq, truth, points);
  });
  if (comm.rank() != 0) return nullptr;
  nlohmann::json out =
      eval_json(config.eval.k, nq, "exact (queries: indexed documents, evenly spaced ids)",
                comm.size(), threads, points);
  if (choice) add_recommendation(out, config.eval.k, eval_target_recall(config), *choice);
  print_eval_table(out);
  return out;
}

}  // namespace

void EvalStage::configure(runtime::StageOptions& options) {
  options.keys({"eval.k", "eval.nprobe", "eval.max_queries", "eval.target_recall",
                "index.target_recall"});
}

void EvalStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  std::unique_ptr<faiss::Index>& index = text_.build.index;
  // The merge wrote index.faiss from the shards: rank 0 reads it (on disk: maps its lists).
  cluster::run_local_phase(comm, "eval: read index", [&] {
    if (comm.rank() == 0) index = io::read_index_file(context.checkpoints.path(kIndexFile));
  });
  eval_ = run_eval(comm, context.config, *index, *text_.index_rows, text_.build.range,
                   text_.indexed, text_.dim, threads_, context.progress);
  // index.faiss stores the recommended nprobe (the merge marker follows; the outputs marker,
  // written after this stage, records the stored file).
  cluster::run_local_phase(comm, "eval: store nprobe", [&] {
    if (comm.rank() == 0 && eval_.contains("recommended") && eval_["recommended"].is_object())
      store_recommended_nprobe(context.checkpoints, *index,
                               eval_["recommended"]["nprobe"].get<int>());
  });
}

runtime::StageOutputs EvalStage::save(cluster::Comm& comm,
                                       const runtime::StageContext& context) {
  if (comm.rank() != 0) return {};
  io::publish_text(context.checkpoints.path(kEvalFile), eval_.dump(2) + "\n");
  return {{kEvalFile}};
}

}  // namespace sf::pipeline
