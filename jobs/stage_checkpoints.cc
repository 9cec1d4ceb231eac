#include "jobs/stage_checkpoints.h"

#include <spdlog/spdlog.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>

#include "io/atomic_file.h"
#include "io/index_file.h"
#include "pipeline/run_dir.h"
#include "pipeline/stop.h"

namespace sf::jobs {

cluster::Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  cluster::Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return bytes;
}

std::string rank_file(const std::string& dir, int rank) {
  char name[32];
  std::snprintf(name, sizeof(name), "/rank-%05d.sfar", rank);
  return dir + name;
}

void checkpoint_rank_files(cluster::Comm& comm, const pipeline::Checkpoints& checkpoints,
                           const pipeline::Fingerprint& fp, const std::string& dir,
                           const std::function<void(const std::string&)>& write,
                           const nlohmann::json& info, const std::vector<std::string>& extra) {
  cluster::run_local_phase(comm, fp.stage() + ": write checkpoint", [&] {
    io::publish_file(checkpoints.path(rank_file(dir, comm.rank())), write);
  });
  pipeline::run_step(comm, fp.stage() + ": checkpoint", [&] {
    if (comm.rank() != 0) return;
    std::vector<std::string> outputs;
    for (int r = 0; r < comm.size(); ++r) outputs.push_back(rank_file(dir, r));
    outputs.insert(outputs.end(), extra.begin(), extra.end());
    checkpoints.mark_complete(fp, outputs, info);
  });
}

void prepare_run_dir(cluster::Comm& comm, const pipeline::Config& config,
                     const pipeline::Checkpoints& checkpoints,
                     const std::vector<std::string>& results,
                     const std::vector<std::string>& checkpoint_outputs,
                     const std::vector<std::string>& folders) {
  namespace fs = std::filesystem;
  cluster::run_local_phase(comm, "prepare output.dir", [&] {
    if (comm.rank() != 0) return;
    const std::string& dir = config.output.dir;
    pipeline::make_run_dir(dir);
    for (const std::string& rel : results) fs::remove_all(checkpoints.path(rel));
    if (config.resume) {
      const std::string previous = pipeline::describe_previous_run(dir);
      spdlog::info("resume: {}", previous.empty() ? "no earlier run in " + dir : previous);
    } else {
      for (const std::string& rel : checkpoint_outputs) fs::remove_all(checkpoints.path(rel));
      checkpoints.forget_all();
    }
    for (const std::string& rel : folders) fs::create_directories(checkpoints.path(rel));
    io::publish_text(dir + "/config.yaml", pipeline::to_yaml(config));
  });
}

void save_trained(const pipeline::Checkpoints& checkpoints, const pipeline::Fingerprint& fp,
                  const faiss::Index& index, const stages::TrainReport& report) {
  io::write_index_file(index, checkpoints.path(kTrainedFile));
  checkpoints.mark_complete(fp, {kTrainedFile},
                            {{"nlist", report.nlist},
                             {"sample_rows", report.sample_rows},
                             {"codebook_rows", report.codebook_rows},
                             {"empty_clusters_split", report.empty_clusters_split},
                             {"kmeans_objective", report.objective}});
}

stages::TrainReport trained_report(const nlohmann::json& info) {
  stages::TrainReport r;
  if (!info.is_object()) return r;
  r.nlist = info.value("nlist", 0);
  r.sample_rows = info.value("sample_rows", int64_t{0});
  r.codebook_rows = info.value("codebook_rows", int64_t{0});
  r.empty_clusters_split = info.value("empty_clusters_split", 0);
  r.objective = info.value("kmeans_objective", std::vector<double>{});
  return r;
}

std::unique_ptr<faiss::Index> load_trained(cluster::Comm& comm,
                                           const pipeline::Checkpoints& checkpoints) {
  cluster::Bytes bytes;
  cluster::run_local_phase(comm, "train: read checkpoint", [&] {
    if (comm.rank() == 0) bytes = read_bytes(checkpoints.path(kTrainedFile));
  });
  comm.broadcast(bytes, 0);
  std::unique_ptr<faiss::Index> index;
  cluster::run_local_phase(comm, "train: read checkpoint",
                           [&] { index = io::deserialize_index(bytes); });
  return index;
}

}  // namespace sf::jobs
