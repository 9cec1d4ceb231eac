#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "io/index_file.h"
#include "pipeline/corpus.h"
#include "pipeline/eval_recommend.h"
#include "pipeline/eval_report.h"
#include "commands/commands.h"
#include "runtime/checkpoint.h"
#include "runtime/memory_budget.h"
#include "runtime/run_dir.h"
#include "runtime/run_manifest.h"
#include "runtime/stop.h"
#include "stages/eval.h"

namespace sf::commands {
namespace {

struct Queries {
  std::vector<float> rows;
  int64_t nq = 0;
  int dim = 0;
  std::optional<stages::Neighbours> truth;  // from a file, when there is one
  std::string truth_source;
};

bool is_hdf5(const std::string& path) {
  return io::detect_vector_format(path) == io::VectorFormat::kHdf5;
}

// Queries and, where a file has it, their true neighbours. Local.
Queries load_queries(const runtime::Config& config) {
  const auto& ev = config.eval;
  Queries q;
  const std::string dataset = is_hdf5(ev.queries) ? ev.queries_dataset : "";
  io::VectorCorpus file({ev.queries}, io::detect_vector_format(ev.queries), dataset);
  q.nq = file.rows();
  if (ev.max_queries > 0) q.nq = std::min(q.nq, ev.max_queries);
  if (q.nq == 0) throw io::InputError(ev.queries + ": no queries");
  q.dim = file.dim();
  q.rows.resize(static_cast<size_t>(q.nq) * q.dim);
  file.read(0, q.nq, q.rows.data());

  std::string truth_path, truth_dataset = "neighbors";
  if (!ev.ground_truth.empty()) {
    truth_path = ev.ground_truth;
  } else if (is_hdf5(ev.queries) && io::hdf5_has_dataset(ev.queries, "neighbors")) {
    truth_path = ev.queries;
  }
  if (truth_path.empty()) return q;
  const io::IdMatrix m = io::read_id_matrix(truth_path, io::detect_vector_format(truth_path), truth_dataset);
  if (m.rows < q.nq)
    throw io::InputError(truth_path + ": ground truth has " + std::to_string(m.rows) +
                         " rows for " + std::to_string(q.nq) + " queries");
  stages::Neighbours t;
  t.nq = q.nq;
  t.k = m.cols;
  t.ids.assign(m.values.begin(), m.values.begin() + q.nq * m.cols);
  q.truth = std::move(t);
  q.truth_source = truth_path;
  return q;
}

}  // namespace

int eval_job(cluster::Comm& comm, const runtime::Config& config) {
  const std::string& dir = config.output.dir;
  const int threads = runtime::choose_threads(config, comm);
  const auto progress = runtime::make_progress_logger(comm.rank());
  runtime::StageLog log(runtime::resolve_memory_budget(config, comm));
  const bool ip = config.index.metric == "ip";

  // What eval.json depends on: the index's bytes, the eval keys, the queries and (for exact
  // ground truth) the corpus, and the rank count (QPS).
  const runtime::Checkpoints checkpoints(dir);
  runtime::claim_outputs(comm, dir, {"eval.json", "checkpoints/eval.json"});
  runtime::Fingerprint eval_fp("eval");
  bool complete = false;
  cluster::run_local_phase(comm, "eval: prepare", [&] {
    eval_fp.keys(config, {"eval.queries", "eval.queries_dataset", "eval.ground_truth", "eval.k",
                          "eval.nprobe", "eval.max_queries", "eval.target_recall",
                          "index.target_recall", "index.metric", "input.paths", "input.format",
                          "input.dataset"})
        .value("ranks", std::to_string(comm.size()));
    if (comm.rank() != 0) return;
    const std::string index_path = dir + "/index.faiss";
    // Every rank loads index.faiss below (from the shared output.dir): rank 0 checks it once
    // against the merge marker, with the checksum the fingerprint takes anyway.
    std::string damaged;
    if (std::filesystem::exists(index_path)) {
      const io::FileDigest digest = io::digest_file(index_path);
      damaged = checkpoints.verify_output("merge", "index.faiss", digest);
      eval_fp.value("index.faiss", io::hex64(digest.xxh3));
    }
    if (!config.eval.queries.empty()) {
      std::vector<std::string> files{config.eval.queries};
      if (!config.eval.ground_truth.empty()) files.push_back(config.eval.ground_truth);
      eval_fp.input_files(config, files);
    }
    if (damaged.empty() && config.resume && checkpoints.verify(eval_fp).empty()) {
      complete = true;
      return;
    }
    // A failed eval must not leave an older eval.json that reads like its result.
    runtime::remove_owned(dir, "eval.json");
    checkpoints.forget("eval");
    if (!damaged.empty()) throw std::runtime_error(damaged);
  });
  complete = comm.sum(static_cast<int64_t>(complete)) > 0;
  if (complete) {
    cluster::run_local_phase(comm, "eval: read eval.json", [&] {
      if (comm.rank() != 0) return;
      std::ifstream in(dir + "/eval.json");
      const nlohmann::json out = nlohmann::json::parse(in);
      spdlog::info("eval: {}/eval.json is complete (marker verified), skipped", dir);
      pipeline::print_eval_table(out, " (from eval.json)");
    });
    return 0;
  }
  runtime::plan_stages({"load", "ground truth", "search"});
  log.begin("load");
  std::unique_ptr<faiss::Index> index;
  Queries queries;
  // Safe points (eval.json is all or nothing: a stopped eval is redone): after loading, during
  // the exact scan, and before the searches.
  runtime::run_step(comm, "eval: load", [&] {
    if (config.eval.queries.empty())
      throw std::invalid_argument(config.source + ": eval.queries is required for eval");
    queries = load_queries(config);
    // Every rank searches a slice of the queries with its own copy of the index.
    index = io::read_index_file(dir + "/index.faiss");
    if (index->d != queries.dim)
      throw io::InputError(config.eval.queries + ": queries have dimension " +
                           std::to_string(queries.dim) + ", the index " + std::to_string(index->d));
  });
  log.end();

  stages::Neighbours truth;
  std::string truth_source = queries.truth_source;
  log.begin("ground truth");
  if (queries.truth) {
    truth = std::move(*queries.truth);
  } else {
    pipeline::OpenedCorpus opened = pipeline::open_corpus(comm, config);
    cluster::run_local_phase(comm, "eval: check queries", [&] {
      if (opened.corpus->dim() != queries.dim)
        throw io::InputError(config.eval.queries + ": queries have dimension " +
                             std::to_string(queries.dim) + ", the corpus " +
                             std::to_string(opened.corpus->dim()));
    });
    const int k = static_cast<int>(std::min<int64_t>(std::max(config.eval.k, 100), opened.corpus->rows()));
    // Batches planned from the budget (alike on every rank: the budget is agreed); a scan that
    // cannot fit fails before it starts.
    const runtime::MemoryBudget& budget = log.budget();
    const stages::ExactScanPlan scan = stages::plan_exact_scan(
        config.input.batch_rows, queries.nq, k, queries.dim, comm.size(), budget.bytes);
    if (budget.bytes > 0 && scan.need_bytes > budget.bytes)
      throw runtime::ConfigError(
          config.source + ": " +
          runtime::over_budget_message(
              "eval.max_queries: the exact ground truth of " + std::to_string(queries.nq) +
                  " queries x top-" + std::to_string(k) + " (" + std::to_string(queries.dim) +
                  " dims, " + std::to_string(comm.size()) + " rank(s))",
              scan.need_bytes, budget,
              "; lower eval.max_queries, give eval.ground_truth or raise "
              "resources.memory_per_rank"));
    spdlog::info("eval: exact top-{} of {} queries across {} rank(s), {} rows per batch", k,
                 queries.nq, comm.size(), scan.rows);
    // A stop is agreed on every rank (runtime::Stopped).
    truth = stages::exact_neighbours(comm, *opened.corpus, opened.range, queries.rows.data(),
                                     queries.nq, k, ip, scan.rows, progress,
                                     runtime::stop_requested);
    truth_source = "exact";
  }
  log.end();

  log.begin("search");
  runtime::run_step(comm, "eval: search", [] {});
  const std::vector<stages::EvalPoint> points =
      stages::evaluate_index(comm, *index, queries.rows.data(), queries.nq, truth, config.eval.k,
                             config.eval.nprobe, progress);
  // The smallest nprobe that reaches the target: more searches, on every rank alike.
  const std::optional<stages::NprobeChoice> choice = pipeline::recommend_nprobe(
      comm, config, *index, queries.rows.data(), queries.nq, truth, points);
  nlohmann::json eval_out;  // rank 0
  cluster::run_local_phase(comm, "eval: write eval.json", [&] {
    if (comm.rank() != 0) return;
    eval_out = pipeline::eval_json(config.eval.k, queries.nq, truth_source, comm.size(), threads,
                                points);
    if (choice) {
      pipeline::add_recommendation(eval_out, config.eval.k, pipeline::eval_target_recall(config),
                                   *choice);
      // index.faiss stores it. The fingerprint takes the stored file's checksum, so that a
      // --resume with nothing changed still skips (the file is what this eval left).
      if (choice->reached)
        eval_fp.value("index.faiss", io::hex64(pipeline::store_recommended_nprobe(
                                                   checkpoints, *index, choice->point.nprobe)
                                                   .xxh3));
    }
    io::publish_text(dir + "/eval.json", eval_out.dump(2) + "\n");
    checkpoints.mark_complete(eval_fp, {"eval.json"});
  });
  log.end();

  if (comm.rank() == 0) pipeline::print_eval_table(eval_out);
  runtime::write_run_json(comm, dir, "eval", threads, log,
                           {{"queries", queries.nq}, {"ground_truth", truth_source}});
  return 0;
}

}  // namespace sf::commands
