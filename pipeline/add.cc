// The add stage (pipeline/index_build.h): this rank's rows added piece by piece, each piece
// published with its own marker; a stop is agreed after every batch. Out of core: the pieces
// stay on disk (IndexBuild::pieces), the merge reads them.
#include <faiss/IndexIVF.h>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "io/index_file.h"
#include "runtime/memory_budget.h"
#include "runtime/stop.h"
#include "stages/batches.h"
#include "stages/block_parallel.h"
#include "stages/build.h"
#include "stages/ivf_index.h"
#include "stages/merge.h"
#include "pipeline/index_build.h"

namespace sf::pipeline {
namespace {

namespace fs = std::filesystem;

std::string piece_name(cluster::RowRange piece) {
  char name[64];
  std::snprintf(name, sizeof(name), "rows-%012lld-%012lld", static_cast<long long>(piece.begin),
                static_cast<long long>(piece.end));
  return name;
}

// The piece's file, relative to the run directory.
std::string piece_path(cluster::RowRange piece) {
  return std::string(kPieceDir) + "/" + piece_name(piece) + ".sfsh";
}

// A piece holds codes of the lists it was added to: `lists` names the exact trained (and
// re-partitioned) index, so pieces of other lists are never reused.
runtime::Fingerprint piece_fingerprint(const runtime::Fingerprint& lists, cluster::RowRange piece) {
  runtime::Fingerprint fp(std::string("add/") + piece_name(piece));
  fp.after(lists).value("rows", std::to_string(piece.begin) + "-" + std::to_string(piece.end));
  return fp;
}

// Empties the inverted lists of `index` (keeps the trained quantizer and codebooks).
void clear_lists(faiss::Index& index) {
  faiss::IndexIVF* ivf = stages::find_ivf(&index);
  ivf->invlists->reset();
  stages::set_ntotal(index, 0);
}

// One unit of the add stage's loop: the ranks run the same number of steps (a rank with
// fewer does empty ones), so they can agree on errors and stop requests after each.
struct AddStep {
  size_t piece = 0;
  bool reuse = false;              // read the piece's verified file
  cluster::RowRange rows;          // else: add these rows (one batch)
  bool last_of_piece = false;      // then publish the piece
};

}  // namespace

stages::AddPlan plan_add_from_budget(cluster::Comm& comm, const runtime::Config& config,
                                     const faiss::Index& trained,
                                     const runtime::MemoryBudget& budget) {
  const faiss::IndexIVF& ivf = stages::ivf_of(trained, "add");
  // Serialized locally (it can fail alone, e.g. out of memory): agreed before the collective.
  uint64_t index_bytes = 0;
  cluster::run_local_phase(comm, "add: size the trained index",
                           [&] { index_bytes = io::serialize_index(trained).size(); });
  // The ranks' threads may differ: the most any rank has, so that every rank plans alike.
  const auto threads = static_cast<int>(comm.max(static_cast<double>(omp_get_max_threads())));
  const stages::AddPlan plan =
      stages::plan_add(config.input.batch_rows, config.output.piece_rows, trained.d,
                       ivf.code_size, static_cast<int64_t>(ivf.nlist), index_bytes, threads,
                       budget.bytes);
  if (budget.bytes > 0 && plan.need_bytes > budget.bytes)
    throw runtime::ConfigError(
        config.source + ": " +
        runtime::over_budget_message(
            "input.batch_rows, output.piece_rows: the add stage's trained index (" +
                runtime::format_bytes(index_bytes) + ", twice), " + std::to_string(threads) +
                " thread(s)' block buffers and a batch and a piece of " +
                std::to_string(stages::kBlockRows) + " rows x " + std::to_string(trained.d) +
                " dims (" + std::to_string(ivf.code_size) + "-byte codes)",
            plan.need_bytes, budget,
            "; choose a smaller index.factory (nlist, dims) or raise resources.memory_per_rank"));
  return plan;
}

void AddStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const runtime::Config& config = context.config;
  const runtime::Checkpoints& checkpoints = context.checkpoints;
  io::VectorCorpus& corpus = *build_.rows;
  const faiss::Index& trained = *build_.index;  // stays empty: the rows go to the pieces
  const cluster::RowRange range = build_.range;
  AddReport& rep = build_.add;
  // Batches and pieces within the budget (the same on every rank; the outputs do not change).
  const stages::AddPlan plan = plan_add_from_budget(comm, config, trained, context.budget);
  if (comm.rank() == 0 && (plan.batch_rows != config.input.batch_rows ||
                           plan.piece_rows != config.output.piece_rows))
    spdlog::info("add: {} rows per batch, {} per piece (input.batch_rows {}, output.piece_rows {}, "
                 "memory budget {})",
                 plan.batch_rows, plan.piece_rows, config.input.batch_rows,
                 config.output.piece_rows, runtime::format_bytes(context.budget.bytes));

  // The pieces name the exact lists they are added to (the same on every rank).
  std::vector<cluster::RowRange> pieces;
  std::vector<runtime::Fingerprint> fps;
  std::vector<AddStep> steps;
  cluster::run_local_phase(comm, "add: plan", [&] {
    const std::vector<char> trained_bytes = io::serialize_index(trained);
    runtime::Fingerprint lists = context.fingerprint.for_stage("lists");
    lists.value("index", io::hex64(io::xxh3(trained_bytes.data(), trained_bytes.size())));
    pieces = stages::split_rows(range, plan.piece_rows);
    for (size_t p = 0; p < pieces.size(); ++p) {
      fps.push_back(piece_fingerprint(lists, pieces[p]));
      if (config.resume) {
        const std::string why = checkpoints.verify(fps.back());
        if (why.empty()) {
          steps.push_back({p, true, pieces[p], true});
          ++rep.pieces_reused;
          rep.rows_reused += pieces[p].size();
          continue;
        }
        // A piece that was never finished is expected; one that no longer verifies is news.
        if (why != runtime::Checkpoints::kNoMarker)
          spdlog::warn("{}: redo: {}", fps.back().stage(), why);
      }
      checkpoints.forget(fps.back().stage());
      const std::vector<cluster::RowRange> batches =
          stages::split_rows(pieces[p], plan.batch_rows);
      for (size_t b = 0; b < batches.size(); ++b)
        steps.push_back({p, false, batches[b], b + 1 == batches.size()});
      ++rep.pieces_added;
      rep.rows_added += pieces[p].size();
    }
    if (!pieces.empty()) fs::create_directories(checkpoints.path(kPieceDir));
    build_.pieces.clear();
    for (const cluster::RowRange piece : pieces)
      build_.pieces.push_back(checkpoints.path(piece_path(piece)));
  });
  const int64_t rounds = -comm.min(-static_cast<int64_t>(steps.size()));
  const int64_t reused_all = comm.sum(rep.rows_reused);
  if (comm.rank() == 0 && config.resume)
    spdlog::info("add: {} of {} rows are in verified pieces and are read back", reused_all,
                 corpus.rows());

  // A copy of the trained index takes one piece at a time.
  std::unique_ptr<faiss::Index> piece_index;
  cluster::run_local_phase(comm, "add: prepare", [&] {
    piece_index = io::deserialize_index(io::serialize_index(trained));
  });
  std::vector<float> batch;
  int64_t done = 0;
  const int64_t total = range.size();
  for (int64_t round = 0; round < rounds; ++round) {
    runtime::run_step(comm, "add", [&] {
      if (round >= static_cast<int64_t>(steps.size())) return;
      const AddStep& step = steps[static_cast<size_t>(round)];
      const std::string rel = piece_path(pieces[step.piece]);
      if (!step.reuse) {
        batch.resize(static_cast<size_t>(step.rows.size()) * corpus.dim());
        corpus.read(step.rows.begin, step.rows.size(), batch.data());
        stages::add_rows(*piece_index, step.rows.begin, step.rows.size(), batch.data());
        if (step.last_of_piece) {
          const cluster::Bytes bytes = stages::encode_shard(*piece_index);
          io::publish_bytes(checkpoints.path(rel), bytes.data(), bytes.size());
          checkpoints.mark_complete(fps[step.piece], {rel},
                                    {{"rows", pieces[step.piece].size()}});
          clear_lists(*piece_index);
        }
      }
      done += step.rows.size();
      stages::report(context.progress, "build: add", done, total);
    });
  }
}

}  // namespace sf::pipeline
