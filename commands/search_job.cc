// `shardforge search`: batched distributed search of search.queries over the sharded layout
// that `build` wrote with partition.shards > 0 (plan.json + shards/).
//
// Checkpoint: search.h5 and search.json get the completion marker "search"; its fingerprint
// holds the search keys, the query file, the rank count and the layout (the build's merge
// marker fingerprint when that marker recorded this plan.json, else the checksums of plan.json
// and every shard). `--resume` skips a search whose marker verifies. A stop request is agreed
// after loading and before each round of queries (nothing partial is kept: a search is redone).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "io/index_file.h"
#include "io/vector_file.h"
#include "pipeline/eval_recommend.h"
#include "commands/commands.h"
#include "runtime/checkpoint.h"
#include "runtime/run_dir.h"
#include "runtime/run_manifest.h"
#include "runtime/stop.h"
#include "stages/partition.h"
#include "stages/shard_search.h"

namespace sf::commands {
namespace {

// What identifies the layout in `dir` (plan.json and its shards). Local; throws
// std::runtime_error naming a file that cannot be read.
std::string layout_identity(const runtime::Checkpoints& checkpoints) {
  const std::string plan_path = checkpoints.path("plan.json");
  const std::string plan_xxh3 = io::hex64(io::digest_file(plan_path).xxh3);
  // The merge marker lists plan.json and every shard with sizes and checksums: when it lists
  // this very plan.json and the shards still have their sizes, its fingerprint names them.
  const std::string merge = checkpoints.recorded_fingerprint("merge", "plan.json", plan_xxh3);
  if (!merge.empty()) return "merge " + merge + ", plan.json " + plan_xxh3;
  std::string id = "plan.json " + plan_xxh3;
  const stages::PartitionPlan plan = stages::read_plan(plan_path);
  for (int s = 0; s < plan.shards; ++s)
    id += ", " + io::hex64(io::digest_file(checkpoints.path(stages::shard_file_name(s))).xxh3);
  return id;
}

// Prints a finished search's summary from its search.json (rank 0).
void print_finished(const std::string& dir) {
  std::ifstream in(dir + "/search.json");
  const nlohmann::json out = nlohmann::json::parse(in);
  spdlog::info("search: {}/search.h5 and search.json are complete (marker verified), skipped", dir);
  std::printf("%jd queries, k %d, nprobe %d, %d shard(s) on %d rank(s) x %d thread(s) (from search.json)\n",
              static_cast<intmax_t>(out.at("queries").get<int64_t>()), out.at("k").get<int>(),
              out.at("nprobe").get<int>(), out.at("shards").get<int>(), out.at("ranks").get<int>(),
              out.at("threads_per_rank").get<int>());
  std::printf("qps %.1f, codes scanned per query %.1f, shard load max/mean %.3f\n",
              out.at("qps").get<double>(), out.at("codes_scanned_per_query").get<double>(),
              out.at("shard_codes_max_over_mean").get<double>());
  std::fflush(stdout);
}

}  // namespace

int search_job(cluster::Comm& comm, const runtime::Config& config) {
  const std::string& dir = config.output.dir;
  const int threads = runtime::choose_threads(config, comm);
  const runtime::SearchConfig& sc = config.search;
  runtime::StageLog log(runtime::resolve_memory_budget(config, comm));

  const runtime::Checkpoints checkpoints(dir);
  runtime::claim_outputs(comm, dir, {"search.json", "search.h5", "checkpoints/search.json"});
  runtime::Fingerprint search_fp("search");
  bool complete = false;
  int64_t chosen_nprobe = 0;  // search.nprobe, or (0) the run's recommended: decided on rank 0
  cluster::run_local_phase(comm, "search: prepare", [&] {
    search_fp
        .keys(config, {"search.queries", "search.queries_dataset", "search.k", "search.nprobe",
                       "search.max_queries"})
        .value("ranks", std::to_string(comm.size()));
    if (comm.rank() != 0) return;
    chosen_nprobe = sc.nprobe;
    if (chosen_nprobe == 0) {
      const pipeline::DefaultNprobe chosen = pipeline::default_nprobe(dir);
      chosen_nprobe = chosen.nprobe;
      spdlog::info("search: nprobe {} (from {}; search.nprobe sets another)", chosen_nprobe,
                   chosen.source);
      // A later eval may recommend another: the results depend on the value taken.
      search_fp.value("nprobe", std::to_string(chosen_nprobe));
    }
    // Without a plan.json the load below says what is missing. Every rank reads it there (from
    // the shared output.dir): rank 0 checks it here once against the build's merge marker.
    const bool planned = std::filesystem::exists(dir + "/plan.json");
    const std::string damaged = planned ? checkpoints.verify_output("merge", "plan.json") : "";
    if (planned && damaged.empty() && !sc.queries.empty()) {
      search_fp.input_files(config, {sc.queries}).value("layout", layout_identity(checkpoints));
      if (config.resume) {
        const std::string why = checkpoints.verify(search_fp);
        if (why.empty()) {
          complete = true;
          return;
        }
        if (why != runtime::Checkpoints::kNoMarker) spdlog::info("search: redo: {}", why);
      }
    }
    // A failed search must not leave older results that read like its own.
    checkpoints.forget("search");
    runtime::remove_owned(dir, "search.json");
    runtime::remove_owned(dir, "search.h5");
    if (!damaged.empty()) throw std::runtime_error(damaged);
  });
  const int nprobe = static_cast<int>(comm.sum(chosen_nprobe));  // rank 0's
  if (comm.sum(static_cast<int64_t>(complete)) > 0) {
    cluster::run_local_phase(comm, "search: read search.json", [&] {
      if (comm.rank() == 0) print_finished(dir);
    });
    return 0;
  }

  runtime::plan_stages({"load", "search", "write"});
  log.begin("load");
  stages::PartitionPlan plan;
  std::map<int, std::unique_ptr<faiss::Index>> shards;
  std::vector<float> queries;
  int64_t nq = 0;
  int dim = 0;
  // A safe point: a stop request that came while loading ends the run here.
  runtime::run_step(comm, "search: load", [&] {
    plan = stages::read_plan(dir + "/plan.json");
    const io::VectorFormat format = io::detect_vector_format(sc.queries);
    io::VectorCorpus file({sc.queries}, format,
                          format == io::VectorFormat::kHdf5 ? sc.queries_dataset : "");
    nq = file.rows();
    if (sc.max_queries > 0) nq = std::min(nq, sc.max_queries);
    if (nq == 0) throw io::InputError(sc.queries + ": no queries");
    dim = file.dim();
    for (int s = 0; s < plan.shards; ++s) {
      if (stages::shard_rank(s, comm.size()) != comm.rank()) continue;
      // As the build's merge marker recorded it; each shard is read, and checked, by one rank.
      checkpoints.require_output("merge", stages::shard_file_name(s));
      std::unique_ptr<faiss::Index> index =
          io::read_index_file(dir + "/" + stages::shard_file_name(s));
      if (index->d != dim)
        throw io::InputError(sc.queries + ": search.queries have dimension " + std::to_string(dim) +
                             ", the index (" + dir + ") " + std::to_string(index->d));
      shards.emplace(s, std::move(index));
    }
    const cluster::RowRange slice = stages::query_slice(nq, plan.shards, comm.rank(), comm.size());
    queries.resize(static_cast<size_t>(slice.size()) * dim);
    if (slice.size() > 0) file.read(slice.begin, slice.size(), queries.data());
  });
  log.end();
  if (nprobe > plan.nlist && comm.rank() == 0)
    spdlog::warn("nprobe {} is more than the {} lists: every list is probed", nprobe,
                 plan.nlist);

  log.begin("search");
  stages::ShardSearchOptions options;
  options.k = sc.k;
  options.nprobe = nprobe;
  // search.batch_queries, bounded by the budget (agreed, so every rank has the same rounds).
  options.batch_queries = stages::budget_batch_queries(sc.batch_queries, dim, sc.k, nprobe,
                                                       comm.size(), log.budget().bytes);
  if (options.batch_queries < sc.batch_queries && comm.rank() == 0)
    spdlog::info("search: {} queries per round (search.batch_queries {}, memory budget {})",
                 options.batch_queries, sc.batch_queries, runtime::format_bytes(log.budget().bytes));
  options.stop_requested = runtime::stop_requested;
  stages::ShardSearchResult res;
  // A stop is agreed on every rank before a round (runtime::Stopped).
  res = stages::distributed_search(comm, plan, shards, queries.data(), nq, options);
  log.end();

  const double qps = res.seconds > 0 ? static_cast<double>(nq) / res.seconds : 0.0;
  const double per_query = static_cast<double>(res.codes_scanned) / static_cast<double>(nq);
  double max_shard = 0, mean_shard = 0;
  for (int64_t c : res.per_shard_codes_scanned) {
    max_shard = std::max(max_shard, static_cast<double>(c));
    mean_shard += static_cast<double>(c) / static_cast<double>(plan.shards);
  }
  const double imbalance = mean_shard > 0 ? max_shard / mean_shard : 1.0;
  log.begin("write");
  cluster::run_local_phase(comm, "search: write results", [&] {
    if (comm.rank() != 0) return;
    io::publish_file(dir + "/search.h5", [&](const std::string& tmp) {
      io::write_hdf5_i64(tmp, "ids", res.ids.data(), nq, sc.k, true);
      io::write_hdf5_f32(tmp, "distances", res.distances.data(), nq, sc.k, false);
      io::write_hdf5_int_attribute(tmp, "format_version", kSearchFormatVersion);
    });
    const nlohmann::json out = {{"format_version", kSearchFormatVersion},
                                {"queries", nq},
                                {"k", sc.k},
                                {"nprobe", nprobe},
                                {"ranks", comm.size()},
                                {"threads_per_rank", threads},
                                {"shards", plan.shards},
                                {"seconds", res.seconds},
                                {"qps", qps},
                                {"codes_scanned_per_query", per_query},
                                {"per_shard_codes_scanned", res.per_shard_codes_scanned},
                                {"shards_per_query", res.shards_per_query},
                                {"shard_codes_max_over_mean", imbalance}};
    io::publish_text(dir + "/search.json", out.dump(2) + "\n");
    checkpoints.mark_complete(search_fp, {"search.h5", "search.json"});
  });
  log.end();
  if (comm.rank() == 0) {
    std::printf("%jd queries, k %d, nprobe %d, %d shard(s) on %d rank(s) x %d thread(s)\n",
                static_cast<intmax_t>(nq), sc.k, nprobe, plan.shards, comm.size(), threads);
    std::printf("qps %.1f, codes scanned per query %.1f, shard load max/mean %.3f, shards per "
                "query %.2f\n", qps, per_query, imbalance, res.shards_per_query);
    std::printf("wrote %s/search.h5 and %s/search.json\n", dir.c_str(), dir.c_str());
    std::fflush(stdout);
  }
  runtime::write_run_json(comm, dir, "search", threads, log,
                           {{"queries", nq}, {"qps", qps}, {"codes_scanned_per_query", per_query}});
  return 0;
}

}  // namespace sf::commands
