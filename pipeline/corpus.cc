#include "pipeline/corpus.h"

#include <algorithm>

#include "runtime/checkpoint.h"
#include "stages/batches.h"
#include "stages/ivf_index.h"
#include "pipeline/index_build.h"

namespace sf::pipeline {

std::string describe_paths(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += (out.empty() ? "" : ", ") + p;
  return out;
}

OpenedCorpus open_corpus(cluster::Comm& comm, const runtime::Config& config) {
  // The text formats are for `dedup`; the same on every rank, so no agreement is needed.
  if (config.input.format == "jsonl" || config.input.format == "fortune")
    throw runtime::ConfigError(config.source + ": input.format: '" + config.input.format +
                                "' is a text format (for dedup); this command reads vector files");
  OpenedCorpus out;
  cluster::run_local_phase(comm, "open input", [&] {
    out.corpus = std::make_unique<io::VectorCorpus>(
        config.input.paths, io::parse_vector_format(config.input.format), config.input.dataset);
    const std::string files = describe_paths(config.input.paths);
    if (out.corpus->rows() == 0) throw io::InputError("empty corpus: " + files +
                           (config.input.paths.size() == 1 ? " holds" : " hold") + " no rows");
    if (out.corpus->rows() < comm.size())
      throw io::InputError("more ranks (" + std::to_string(comm.size()) + ") than rows (" +
                           std::to_string(out.corpus->rows()) + ") in " + files +
                           ": run with at most " + std::to_string(out.corpus->rows()) + " ranks");
    out.range = stages::rank_rows(out.corpus->rows(), comm.rank(), comm.size());
  });
  return out;
}

void OpenVectorsStage::configure(runtime::StageOptions& options) {
  const runtime::InputConfig& in = options.config().input;
  paths_ = options.read("input.paths", in.paths);
  options.read("input.format", in.format);
  options.read("input.dataset", in.dataset);
}

void OpenVectorsStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const runtime::Config& config = context.config;
  OpenedCorpus opened = open_corpus(comm, config);
  corpus_ = std::move(opened.corpus);
  build_.rows = corpus_.get();
  build_.range = opened.range;
  // index.factory auto: the tune stage's base factory until it chooses.
  const std::string factory = checked_factory(config, corpus_->rows());
  build_.factory = factory;
  build_.inputs = paths_;  // train fingerprints them, once they opened
  runtime::share_input_digests(comm, config);  // input.verify: content reads them once
  // A factory string shardforge cannot shard (not IVF, ...) is a bad config whatever the data:
  // exit 2 (README, "Exit codes"). Every rank has the same dimension and throws alike here.
  const io::VectorCorpus& corpus = *corpus_;
  std::unique_ptr<faiss::Index> probe;
  std::string refused;  // FAISS refused the string for this dimension: it does not fit the data
  try {
    probe = stages::make_ivf_index(corpus.dim(), factory, config.index.metric == "ip");
  } catch (const stages::UnshardableFactory& e) {
    throw runtime::ConfigError(config.source + ": " + e.what());
  } catch (const std::invalid_argument& e) {
    refused = e.what();
  }
  cluster::run_local_phase(comm, "check index.factory", [&] {
    // Fails alike on every rank, before any collective of the training.
    // A bad value of index.factory names the key and the config file.
    if (probe == nullptr) throw runtime::ConfigError(config.source + ": " + refused);
    const auto nlist = static_cast<int64_t>(stages::find_ivf(probe.get())->nlist);
    if (corpus.rows() < nlist)
      throw runtime::ConfigError(config.source + ": index.factory '" + factory +
                                  "' has " + std::to_string(nlist) + " lists, but the corpus (" +
                                  describe_paths(config.input.paths) + ") has only " +
                                  std::to_string(corpus.rows()) + " rows");
    if (config.index.train_size > 0 && config.index.train_size < nlist)
      throw runtime::ConfigError(config.source + ": index.train_size " +
                                  std::to_string(config.index.train_size) +
                                  " is smaller than nlist " + std::to_string(nlist));
    stages::TrainOptions samples;
    samples.train_size = config.index.train_size;
    samples.codebook_sample = config.index.codebook_sample;
    const std::string misfit = stages::training_misfit(*probe, corpus.rows(), samples);
    if (!misfit.empty())
      throw runtime::ConfigError(
          config.source + ": index.factory '" + factory + "' " + misfit +
          "; the corpus (" + describe_paths(config.input.paths) + ") has " +
          std::to_string(corpus.rows()) + " rows x " + std::to_string(corpus.dim()) + " dims");
    check_partition(config, nlist);
  });
}

void check_partition(const runtime::Config& config, int64_t nlist) {
  const int64_t bound = config.partition.max_nlist > 0 ? config.partition.max_nlist : nlist;
  if (config.partition.shards > std::min(nlist, bound))
    throw runtime::ConfigError(config.source + ": partition.shards " +
                                std::to_string(config.partition.shards) + " is more than the " +
                                std::to_string(std::min(nlist, bound)) +
                                " lists of index.factory '" + config.index.factory +
                                "': each shard owns whole lists");
  if (config.partition.shards == 0 && !config.partition.workload.empty())
    throw runtime::ConfigError(config.source + ": partition.workload is set but partition.shards "
                                "is 0: set partition.shards to build the sharded layout");
}

}  // namespace sf::pipeline
