#include "pipeline/eval_recommend.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "pipeline/index_build.h"
#include "pipeline/text_index.h"
#include "stages/index_nprobe.h"
#include "stages/ivf_index.h"

namespace sf::pipeline {

double eval_target_recall(const runtime::Config& config) {
  return config.eval.target_recall > 0 ? config.eval.target_recall : config.index.target_recall;
}

std::optional<stages::NprobeChoice> recommend_nprobe(cluster::Comm& comm,
                                                     const runtime::Config& config,
                                                     faiss::Index& index, const float* queries,
                                                     int64_t nq, const stages::Neighbours& truth,
                                                     const std::vector<stages::EvalPoint>& points) {
  const int k = config.eval.k;
  const char* why = nullptr;
  if (stages::find_ivf(&index) == nullptr)
    why = "the index is not an IVF index";
  else if (truth.k < k || index.ntotal < k)
    why = "the ground truth or the index has fewer than eval.k neighbours";
  if (why != nullptr) {
    if (comm.rank() == 0) spdlog::info("eval: no recommended nprobe: {}", why);
    return std::nullopt;
  }
  return stages::recommend_nprobe(comm, index, queries, nq, truth, k, points,
                                  eval_target_recall(config));
}

io::FileDigest store_recommended_nprobe(const runtime::Checkpoints& checkpoints,
                                        faiss::Index& index, int nprobe) {
  const std::string path = checkpoints.path(kIndexFile);
  const int64_t was = stages::store_nprobe(path, index, nprobe);
  // The file may be GBs: one read, for the marker. A crash between the write and the marker
  // leaves a marker that fails: the merge is redone on --resume, never a wrong index used.
  const io::FileDigest digest = io::digest_file(path);
  checkpoints.refresh_output("merge", kIndexFile, digest);
  spdlog::info("eval: {} stores nprobe {} (was {})", path, nprobe, was);
  return digest;
}

DefaultNprobe default_nprobe(const std::string& run_dir) {
  const runtime::Checkpoints checkpoints(run_dir);
  // eval.json, then tune.json: the first that verifies and names an nprobe.
  struct Source {
    const char* file;
    const char* stage;
    const char* label;
  };
  for (const Source& s : {Source{kEvalFile, "eval", "eval.json (recommended)"},
                          Source{kTuneFile, "tune", kTuneFile}}) {
    const std::string path = checkpoints.path(s.file);
    std::error_code missing;
    if (!std::filesystem::exists(path, missing)) continue;
    const std::string damaged = checkpoints.verify_output(s.stage, s.file);
    if (!damaged.empty()) {
      spdlog::warn("{}; its nprobe is not used", damaged);
      continue;
    }
    std::ifstream in(path);
    const nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object()) {
      spdlog::warn("{}: not JSON; its nprobe is not used", path);
      continue;
    }
    const nlohmann::json& holder =
        s.file == std::string(kEvalFile) ? doc.value("recommended", nlohmann::json()) : doc;
    if (holder.is_object() && holder.contains("nprobe") && holder["nprobe"].is_number_integer() &&
        holder["nprobe"].get<int64_t>() >= 1)
      return {static_cast<int>(holder["nprobe"].get<int64_t>()), s.label};
  }
  return {kDefaultNprobe, "the default"};
}

}  // namespace sf::pipeline
