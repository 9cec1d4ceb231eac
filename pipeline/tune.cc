// The tune stage (pipeline/index_build.h): index.factory auto, stages/autotune.h on the build's
// own coarse quantizer; tune.json, and the k-means state train continues from.
#include <faiss/IndexFlat.h>
#include <faiss/VectorTransform.h>
#include <faiss/impl/io.h>
#include <faiss/index_io.h>
#include <omp.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <fstream>

#include "io/atomic_file.h"
#include "runtime/memory_budget.h"
#include "stages/ivf_index.h"
#include "pipeline/index_build.h"

namespace sf::pipeline {
namespace {

// tune-opq.faiss: an OPQ choice's rotation as FAISS writes a LinearTransform (d x d, no bias;
// faiss.read_VectorTransform reads it).
cluster::Bytes encode_rotation(const std::vector<float>& a, int d) {
  faiss::LinearTransform rotation(d, d, false);
  rotation.A = a;
  rotation.is_trained = true;
  faiss::VectorIOWriter out;
  faiss::write_VectorTransform(&rotation, &out);
  return cluster::Bytes(out.data.begin(), out.data.end());
}
std::vector<float> decode_rotation(const cluster::Bytes& bytes, int d) {
  faiss::VectorIOReader in;
  in.data.assign(bytes.begin(), bytes.end());
  const std::unique_ptr<faiss::VectorTransform> vt(faiss::read_VectorTransform(&in));
  const auto* lt = dynamic_cast<const faiss::LinearTransform*>(vt.get());
  if (lt == nullptr || lt->d_in != d || lt->d_out != d ||
      lt->A.size() != static_cast<size_t>(d) * static_cast<size_t>(d))
    throw std::runtime_error(std::string(kTuneRotationFile) + ": not a " + std::to_string(d) +
                             " x " + std::to_string(d) + " rotation");
  return lt->A;
}

// The smallest nlist's: every candidate has at least its lists.
std::string base_factory(int64_t rows) {
  return "IVF" + std::to_string(stages::auto_nlist(rows)) + ",Flat";
}

// The ConfigError message when no candidate can be chosen.
std::string no_choice_message(const runtime::Config& config, const stages::TuneResult& r,
                              int k) {
  const std::string budget = runtime::format_byte_size(config.index.memory_budget);
  const stages::TuneCandidate* smallest = nullptr;
  const stages::TuneCandidate* best = nullptr;
  for (const stages::TuneCandidate& c : r.candidates) {
    if (smallest == nullptr || c.index_bytes < smallest->index_bytes) smallest = &c;
    if (c.measured && (best == nullptr || c.recall > best->recall)) best = &c;
  }
  if (best == nullptr)
    return config.source + ": index.memory_budget " + budget + " is smaller than every candidate " +
           "index of the " + std::to_string(r.corpus_rows) + " rows: the smallest, " +
           smallest->factory + ", takes " + runtime::human_bytes(smallest->index_bytes) + " (" +
           std::to_string(smallest->index_bytes) +
           " bytes: codes and 8-byte ids); raise index.memory_budget to at least that";
  char recall[32], target[32];
  std::snprintf(recall, sizeof(recall), "%.3f", best->recall);
  std::snprintf(target, sizeof(target), "%g", config.index.target_recall);
  std::string message = config.source + ": index.target_recall " + target +
                        " is not reached within index.memory_budget " + budget +
                        ": the best candidate that fits, " + best->factory + " (" +
                        runtime::human_bytes(best->index_bytes) + "), reaches recall@" +
                        std::to_string(k) + " " + recall + " at nprobe " +
                        std::to_string(best->tried_nprobe) +
                        " on the tuning sample; lower index.target_recall";
  // The smallest candidate over the budget, as the size that may reach it.
  const stages::TuneCandidate* larger = nullptr;
  for (const stages::TuneCandidate& c : r.candidates)
    if (!c.fits && (larger == nullptr || c.index_bytes < larger->index_bytes)) larger = &c;
  if (larger != nullptr)
    message += " or raise index.memory_budget (the next candidate, " + larger->factory + ", takes " +
               runtime::human_bytes(larger->index_bytes) + ", " +
               std::to_string(larger->index_bytes) + " bytes)";
  return message;
}

void log_choice(const stages::TuneResult& r, int k, double target) {
  spdlog::info("tune: {} candidates on {} sample rows and {} held-out queries (recall@{} target "
               "{:.3f}):",
               r.candidates.size(), r.db_rows, r.queries, k, target);
  const nlohmann::json table = stages::tune_json(r);
  for (size_t i = 0; i < r.candidates.size(); ++i)
    spdlog::info("tune:   {}", tune_row(table["candidates"][i], static_cast<int>(i) == r.chosen));
}

}  // namespace

std::string tune_row(const nlohmann::json& c, bool chosen) {
  const std::string factory = c.value("factory", std::string());
  const std::string size = runtime::human_bytes(c.value("index_bytes", uint64_t{0}));
  char line[256];
  if (!c.value("fits", true)) {
    std::snprintf(line, sizeof(line), "%-22s %10s  over the budget", factory.c_str(), size.c_str());
  } else if (!c.value("measured", false) && c.value("tried_nprobe", 0) == 0) {
    std::snprintf(line, sizeof(line),
                  "%-22s %10s  not measured: its lists hold at most %.3f of the neighbours",
                  factory.c_str(), size.c_str(), c.value("recall", 0.0));
  } else if (!c.value("measured", false)) {
    std::snprintf(line, sizeof(line),
                  "%-22s %10s  not measured: its lists need nprobe %d, there at least %.1f "
                  "us/query, no less than the choice",
                  factory.c_str(), size.c_str(), c.value("tried_nprobe", 0),
                  c.value("cost_ns", 0.0) / 1000);
  } else {
    const int nprobe = c.value("nprobe", 0);
    std::snprintf(line, sizeof(line),
                  "%-22s %10s  nprobe %5s  recall %.3f  codes/query %8.0f  modelled %8.1f us/query"
                  "  sample %7.0f qps%s",
                  factory.c_str(), size.c_str(), nprobe > 0 ? std::to_string(nprobe).c_str() : "-",
                  c.value("recall", 0.0), c.value("codes_per_query", 0.0), c.value("cost_ns", 0.0) / 1000,
                  c.value("sample_qps", 0.0), chosen ? "  <- chosen" : "");
  }
  return line;
}


bool auto_index(const runtime::Config& config) { return config.index.factory == "auto"; }

std::string checked_factory(const runtime::Config& config, int64_t rows) {
  return auto_index(config) ? base_factory(rows) : config.index.factory;
}

void TuneStage::configure(runtime::StageOptions& options) {
  const runtime::Config& config = options.config();
  const runtime::IndexConfig& c = config.index;
  options.read("index.factory", c.factory);
  train_.inner_product = options.read("index.metric", c.metric) == "ip";
  train_.train_size = options.read("index.train_size", c.train_size);
  train_.kmeans_iterations = options.read("index.kmeans_iterations", c.kmeans_iterations);
  train_.codebook_sample = options.read("index.codebook_sample", c.codebook_sample);
  train_.seed = options.read("seed", config.seed);
  options_.inner_product = train_.inner_product;
  options_.seed = train_.seed;
  options_.budget_bytes = options.read("index.memory_budget", c.memory_budget).bytes;
  options_.target_recall = options.read("index.target_recall", c.target_recall);
  options_.tune_rows = options.read("index.tune_rows", c.tune_rows);
  options_.tune_queries = options.read("index.tune_queries", c.tune_queries);
  options_.k = options.read("eval.k", config.eval.k);
  if (!build_.inputs.empty()) options.input_files(build_.inputs);
}

void TuneStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const runtime::Config& config = context.config;
  io::VectorCorpus& corpus = *build_.rows;
  const int64_t rows = corpus.rows();
  const int d = corpus.dim();
  const std::vector<int> nlists = stages::auto_nlists(rows, d);

  // What fits the budget is known before any work: nothing to measure is a config error.
  std::vector<stages::TuneCandidate> sized;
  for (int nlist : nlists)
    for (const stages::TuneCandidate& c : stages::tune_candidates(d, nlist, rows, options_))
      sized.push_back(c);
  if (std::none_of(sized.begin(), sized.end(), [](const auto& c) { return c.fits; })) {
    stages::TuneResult r;
    r.corpus_rows = rows;
    r.candidates = sized;
    throw runtime::ConfigError(no_choice_message(config, r, options_.k));
  }
  // The tuning sample on every rank (once), and a candidate index per thread (Flat: a copy).
  const int64_t sample = std::min(options_.tune_rows + options_.tune_queries, rows);
  const auto threads = static_cast<uint64_t>(comm.max(static_cast<double>(omp_get_max_threads())));
  const uint64_t need = static_cast<uint64_t>(sample) * (4 * static_cast<uint64_t>(d) + 8) * (1 + threads);
  if (context.budget.bytes > 0 && need > context.budget.bytes / 2)
    throw runtime::ConfigError(
        config.source + ": " +
        runtime::over_budget_message(
            "index.tune_rows: the tuning sample of " + std::to_string(sample) + " rows x " +
                std::to_string(d) + " dims on every rank, and a candidate index on each of its " +
                std::to_string(threads) + " thread(s)",
            need * 2, context.budget, "; lower index.tune_rows or raise resources.memory_per_rank"));

  // Per nlist, the build's own coarse quantizer (the same k-means train runs for any
  // IVF<nlist> factory); then every candidate of each, on one tuning sample. train continues
  // from the chosen nlist's k-means.
  std::vector<stages::CoarseQuantizer> quantizers;
  std::vector<stages::KMeansState> states;
  for (int nlist : nlists) {
    stages::TrainOptions topt = train_;
    topt.factory = "IVF" + std::to_string(nlist) + ",Flat";
    check_train_budget(comm, config, corpus, topt, context.budget);
    stages::TrainReport report;
    std::unique_ptr<faiss::Index> base =
        stages::train_index(comm, corpus, build_.range, topt, &report, context.progress);
    const auto* flat = dynamic_cast<const faiss::IndexFlat*>(stages::ivf_of(*base, "tune").quantizer);
    if (flat == nullptr) throw std::logic_error("tune: the quantizer of " + topt.factory + " is not flat");
    const float* xb = flat->get_xb();
    quantizers.push_back({nlist, std::vector<float>(xb, xb + static_cast<size_t>(nlist) * d)});
    states.push_back({nlist, d, train_.kmeans_iterations, quantizers.back().centroids,
                      report.objective, report.empty_clusters_split});
  }
  const stages::TuneResult result =
      stages::tune_index(comm, corpus, build_.range, quantizers, options_, context.progress);
  // An OPQ choice keeps the rotation the tuning measured, and the k-means turned by it (a
  // rotation keeps distances: the k-means of the rotated rows, without a second k-means, and
  // without FAISS's 50 OPQ iterations over the codebook sample, estimated at up to ~50 min on
  // one core for OPQ196 on Fashion-MNIST). Its bytes are not those of a build given the
  // factory by hand, which trains its own rotation.
  build_.tuned_kmeans.reset();
  build_.tuned_rotation = result.rotation;
  if (result.chosen >= 0)
    for (const stages::KMeansState& state : states)
      if (state.k == result.candidates[static_cast<size_t>(result.chosen)].nlist) {
        build_.tuned_kmeans = state;
        if (!result.rotation.empty())
          build_.tuned_kmeans->centroids = stages::rotate_rows(
              result.rotation, d, state.centroids.data(), static_cast<int64_t>(state.k));
      }
  if (comm.rank() == 0) log_choice(result, options_.k, options_.target_recall);
  if (result.chosen < 0) throw runtime::ConfigError(no_choice_message(config, result, options_.k));
  const stages::TuneCandidate& chosen = result.candidates[static_cast<size_t>(result.chosen)];
  build_.factory = chosen.factory;
  build_.tuned_nprobe = chosen.nprobe;
  build_.tune_summary = stages::tune_json(result);
  build_.tune_summary.update(nlohmann::json{{"k", options_.k},
                                            {"target_recall", options_.target_recall},
                                            {"memory_budget", options_.budget_bytes}});
  if (comm.rank() == 0)
    spdlog::info("tune: chose {} ({}), nprobe {}: recall@{} {:.3f} on the sample", chosen.factory,
                 runtime::human_bytes(chosen.index_bytes), chosen.nprobe, options_.k, chosen.recall);
}

runtime::StageOutputs TuneStage::save(cluster::Comm& comm, const runtime::StageContext& context) {
  if (comm.rank() != 0) return {};
  io::publish_text(context.checkpoints.path(kTuneFile), build_.tune_summary.dump(2) + "\n");
  const cluster::Bytes state = stages::encode_kmeans_state(*build_.tuned_kmeans);
  io::publish_bytes(context.checkpoints.path(kTuneKMeansFile), state.data(), state.size());
  if (build_.tuned_rotation.empty())
    return {{kTuneFile, kTuneKMeansFile},
            {{"factory", build_.factory}, {"nprobe", build_.tuned_nprobe}}};
  const cluster::Bytes rotation = encode_rotation(build_.tuned_rotation, build_.rows->dim());
  io::publish_bytes(context.checkpoints.path(kTuneRotationFile), rotation.data(), rotation.size());
  return {{kTuneFile, kTuneKMeansFile, kTuneRotationFile},
          {{"factory", build_.factory}, {"nprobe", build_.tuned_nprobe}, {"rotation", true}}};
}

void TuneStage::load(cluster::Comm& comm, const runtime::StageContext& context,
                     const nlohmann::json& info) {
  skip(context, info);
  const bool rotated = info.value("rotation", false);
  cluster::Bytes state, rotation;
  cluster::run_local_phase(comm, "tune: read checkpoint", [&] {
    if (comm.rank() != 0) return;
    state = runtime::read_bytes(context.checkpoints.path(kTuneKMeansFile));
    if (rotated) rotation = runtime::read_bytes(context.checkpoints.path(kTuneRotationFile));
  });
  comm.broadcast(state, 0);
  comm.broadcast(rotation, 0);
  cluster::run_local_phase(comm, "tune: read checkpoint", [&] {
    build_.tuned_kmeans = stages::decode_kmeans_state(state);
    build_.tuned_rotation.clear();
    if (rotated) build_.tuned_rotation = decode_rotation(rotation, build_.rows->dim());
  });
}

void TuneStage::skip(const runtime::StageContext& context, const nlohmann::json& info) {
  build_.factory = info.at("factory").get<std::string>();
  build_.tuned_nprobe = info.at("nprobe").get<int>();
  std::ifstream in(context.checkpoints.path(kTuneFile));
  if (in) build_.tune_summary = nlohmann::json::parse(in, nullptr, false);
}

}  // namespace sf::pipeline
