// `shardforge search`: batched distributed search of search.queries over the sharded layout
// that `build` wrote with partition.shards > 0 (plan.json + shards/).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "io/atomic_file.h"
#include "io/index_file.h"
#include "io/vector_file.h"
#include "jobs/jobs.h"
#include "pipeline/run_dir.h"
#include "stages/partition.h"
#include "stages/shard_search.h"

namespace sf::jobs {

int search_job(cluster::Comm& comm, const pipeline::Config& config) {
  const std::string& dir = config.output.dir;
  const int threads = pipeline::choose_threads(config, comm);
  const pipeline::SearchConfig& sc = config.search;
  pipeline::StageLog log;

  // A failed search must not leave older results that read like its own.
  cluster::run_local_phase(comm, "search: prepare", [&] {
    if (comm.rank() != 0) return;
    std::filesystem::remove(dir + "/search.json");
    std::filesystem::remove(dir + "/search.h5");
  });

  log.begin("load");
  stages::PartitionPlan plan;
  std::map<int, std::unique_ptr<faiss::Index>> shards;
  std::vector<float> queries;
  int64_t nq = 0;
  int dim = 0;
  cluster::run_local_phase(comm, "search: load", [&] {
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
  if (sc.nprobe > plan.nlist && comm.rank() == 0)
    spdlog::warn("search.nprobe {} is more than the {} lists: every list is probed", sc.nprobe,
                 plan.nlist);

  log.begin("search");
  stages::ShardSearchOptions options;
  options.k = sc.k;
  options.nprobe = sc.nprobe;
  options.batch_queries = sc.batch_queries;
  const stages::ShardSearchResult res =
      stages::distributed_search(comm, plan, shards, queries.data(), nq, options);
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
                                {"nprobe", sc.nprobe},
                                {"ranks", comm.size()},
                                {"threads_per_rank", threads},
                                {"shards", plan.shards},
                                {"seconds", res.seconds},
                                {"qps", qps},
                                {"codes_scanned_per_query", per_query},
                                {"per_shard_codes_scanned", res.per_shard_codes_scanned},
                                {"shard_codes_max_over_mean", imbalance}};
    io::publish_text(dir + "/search.json", out.dump(2) + "\n");
  });
  log.end();
  if (comm.rank() == 0) {
    std::printf("%jd queries, k %d, nprobe %d, %d shard(s) on %d rank(s) x %d thread(s)\n",
                static_cast<intmax_t>(nq), sc.k, sc.nprobe, plan.shards, comm.size(), threads);
    std::printf("qps %.1f, codes scanned per query %.1f, shard load max/mean %.3f\n", qps,
                per_query, imbalance);
    std::printf("wrote %s/search.h5 and %s/search.json\n", dir.c_str(), dir.c_str());
    std::fflush(stdout);
  }
  pipeline::write_run_json(comm, dir, "search", threads, log,
                           {{"queries", nq}, {"qps", qps}, {"codes_scanned_per_query", per_query}});
  return 0;
}

}  // namespace sf::jobs
