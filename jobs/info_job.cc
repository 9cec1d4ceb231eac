#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/MetricType.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "io/index_file.h"
#include "jobs/jobs.h"
#include "stages/ivf_index.h"

namespace sf::jobs {
namespace {

void print_index(const std::string& path) {
  std::unique_ptr<faiss::Index> index = io::read_index_file(path);
  const faiss::IndexIVF* ivf = stages::find_ivf(index.get());
  std::printf("index        %s (%ju bytes)\n", path.c_str(),
              static_cast<uintmax_t>(std::filesystem::file_size(path)));
  std::printf("vectors      %jd x %d dims, metric %s\n", static_cast<intmax_t>(index->ntotal),
              index->d, index->metric_type == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2");
  if (const auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(index.get()))
    std::printf("transforms   %zu (-> %d dims)\n", pt->chain.size(), pt->index->d);
  if (ivf == nullptr) return;
  size_t lo = SIZE_MAX, hi = 0, empty = 0;
  for (size_t l = 0; l < ivf->nlist; ++l) {
    const size_t n = ivf->invlists->list_size(l);
    lo = std::min(lo, n);
    hi = std::max(hi, n);
    empty += n == 0;
  }
  std::printf("ivf          nlist %zu, code size %zu bytes\n", ivf->nlist, ivf->code_size);
  std::printf("lists        min %zu, mean %.1f, max %zu, empty %zu, imbalance %.3f\n", lo,
              static_cast<double>(ivf->ntotal) / static_cast<double>(ivf->nlist), hi, empty,
              ivf->invlists->imbalance_factor());
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  auto j = nlohmann::json::parse(in, nullptr, false);
  return j.is_discarded() ? nlohmann::json(nullptr) : j;
}

void print_run(const nlohmann::json& run) {
  if (!run.is_object() || !run.contains("commands")) return;
  for (const auto& [command, entry] : run["commands"].items()) {
    std::printf("%s: %d rank(s) x %d thread(s)\n", command.c_str(), entry.value("ranks", 0),
                entry.value("threads_per_rank", 0));
    for (const auto& stage : entry["stages"]) {
      double secs = 0, rss = 0;
      for (const auto& s : stage["seconds"]) secs = std::max(secs, s.get<double>());
      for (const auto& r : stage["peak_rss_mib"]) rss = std::max(rss, r.get<double>());
      std::printf("  %-14s %9.2f s  peak %8.1f MiB (slowest / largest rank)\n",
                  stage["name"].get<std::string>().c_str(), secs, rss);
    }
  }
}

void print_eval(const nlohmann::json& eval) {
  if (!eval.is_object()) return;
  std::printf("eval (k=%d, %d queries):\n", eval.value("k", 0), eval.value("queries", 0));
  for (const auto& r : eval["results"]) {
    auto fmt = [&](const char* key) {
      return r[key].is_null() ? std::string("-") : std::to_string(r[key].get<double>()).substr(0, 6);
    };
    std::printf("  nprobe %4d  recall@1 %s  recall@10 %s  recall@100 %s  qps %.0f\n",
                r["nprobe"].get<int>(), fmt("recall@1").c_str(), fmt("recall@10").c_str(),
                fmt("recall@100").c_str(), r["qps"].get<double>());
  }
}

}  // namespace

int info_job(cluster::Comm& comm, const pipeline::Config& config) {
  if (comm.rank() != 0) return 0;
  const std::string& dir = config.output.dir;
  std::printf("run directory %s\n", dir.c_str());
  const std::string index_path = dir + "/index.faiss";
  if (std::filesystem::exists(index_path))
    print_index(index_path);
  else
    std::printf("index        (none yet: run `shardforge build`)\n");
  print_run(read_json(dir + "/run.json"));
  print_eval(read_json(dir + "/eval.json"));
  std::fflush(stdout);
  return 0;
}

}  // namespace sf::jobs
