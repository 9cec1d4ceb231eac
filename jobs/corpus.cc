#include "jobs/corpus.h"

#include "stages/batches.h"

namespace sf::jobs {

std::string describe_paths(const std::vector<std::string>& paths) {
  std::string out;
  for (const auto& p : paths) out += (out.empty() ? "" : ", ") + p;
  return out;
}

OpenedCorpus open_corpus(cluster::Comm& comm, const pipeline::Config& config) {
  // The text formats are for `dedup`; the same on every rank, so no agreement is needed.
  if (config.input.format == "jsonl" || config.input.format == "fortune")
    throw pipeline::ConfigError(config.source + ": input.format: '" + config.input.format +
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

}  // namespace sf::jobs
