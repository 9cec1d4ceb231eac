// The outputs stage of `run` (pipeline/text_index.h): the semantic verdicts back to the ranks that
// read the documents, then ids.jsonl and duplicates.jsonl as parts per rank, published by
// rank 0 with embedder.json.
#include <algorithm>
#include <cstdio>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/text_output.h"
#include "runtime/run_manifest.h"
#include "pipeline/kept_shards.h"
#include "pipeline/text_index.h"

namespace sf::pipeline {

namespace {

std::string json_string(const std::string& s) { return nlohmann::json(s).dump(); }

}  // namespace

void OutputsStage::configure(runtime::StageOptions& options) {
  options.keys({"run.dedup", "run.semdedup", "run.index", "run.eval"});
  if (options.config().run.write_kept)  // kept/ is one of the outputs
    options.keys({"run.write_kept", "output.compression", "output.max_file_bytes"});
}

void OutputsStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  // No stage after this one reads the vectors.
  text_.build.rows = nullptr;
  text_.index_rows.reset();
  text_.embeddings.reset();

  const stages::dedup::LocalCorpus& corpus = deduped_.corpus;
  const std::vector<int64_t>& begins = deduped_.begins;
  const cluster::RowRange range = deduped_.range;
  const auto local_docs = static_cast<int64_t>(corpus.keep_score.size());
  std::vector<Removal> removed(static_cast<size_t>(local_docs), Removal::kKept);
  for (const auto& v : deduped_.verdicts) removed[v.row - range.begin] = Removal::kDuplicate;
  // run.write_kept: kept/ as dedup writes it, the documents exact + near dedup kept (semantic
  // duplicates included), into run.tmp/kept/; published by save().
  kept_.clear();
  if (context.config.run.write_kept) {
    std::vector<char> duplicate(removed.size());
    for (size_t i = 0; i < removed.size(); ++i) duplicate[i] = removed[i] == Removal::kDuplicate;
    kept_ = write_kept_documents(comm, deduped_, duplicate,
                                 context.checkpoints.path(std::string(kRunTmpDir) + "/kept"),
                                 kept_layout(context.config, deduped_.setup.read.format),
                                 context.progress)
                .names;
  }

  // The semantic verdicts back to the reading ranks: this rank's documents removed as
  // semantic duplicates, by row.
  std::vector<SemanticDuplicate> semantic;
  {
    std::vector<std::vector<SemanticDuplicate>> out(static_cast<size_t>(comm.size()));
    for (const auto& v : text_.semantic) out[stages::dedup::owner_of(begins, v.row)].push_back(v);
    for (auto& part : cluster::exchange(comm, out))
      semantic.insert(semantic.end(), part.begin(), part.end());
    std::sort(semantic.begin(), semantic.end(),
              [](const SemanticDuplicate& a, const SemanticDuplicate& b) { return a.row < b.row; });
    for (const auto& v : semantic) removed[v.row - range.begin] = Removal::kSemantic;
  }

  // Parts per rank (rank 0 publishes them in save()).
  std::vector<uint64_t> wanted;
  for (const auto& v : deduped_.verdicts) {
    wanted.push_back(v.cluster);
    wanted.push_back(v.representative);
  }
  for (const auto& v : semantic) wanted.push_back(v.representative);
  auto id_of_local = [&](uint64_t row) {
    const std::string& id = corpus.ids[row - range.begin];
    return id.empty() ? std::to_string(row) : id;
  };
  const auto ids = stages::dedup::fetch_by_row(comm, begins, wanted, id_of_local);
  // duplicates.jsonl: where a representative without an id is (file and line).
  std::vector<uint64_t> representatives;
  for (const auto& v : deduped_.verdicts) representatives.push_back(v.representative);
  for (const auto& v : semantic) representatives.push_back(v.representative);
  const auto representative_locations = stages::dedup::fetch_by_row(
      comm, begins, representatives,
      [&](uint64_t row) { return deduped_.location_of_local(row, "representative_"); });
  int64_t final_local = 0;
  for (int64_t i = 0; i < local_docs; ++i) final_local += removed[i] == Removal::kKept;
  const int64_t first_id = comm.exscan(final_local);
  const std::string tmp_dir = context.checkpoints.path(kRunTmpDir);
  cluster::run_local_phase(comm, "write parts", [&] {
    const std::string part = io::part_name(comm.rank(), io::TextFormat::kJsonl);
    io::publish_file(tmp_dir + "/ids/" + part, [&](const std::string& tmp) {
      io::FileWriter out(tmp);
      int64_t next = first_id;
      for (int64_t i = 0; i < local_docs; ++i) {
        if (removed[i] != Removal::kKept) continue;
        const auto row = static_cast<uint64_t>(range.begin + i);
        out.write("{\"index_id\": " + std::to_string(next++) + ", \"id\": " + id_of_local(row) +
                  ", \"row\": " + std::to_string(row) + ", \"file\": " +
                  json_string(corpus.files[corpus.pieces[corpus.piece_of(i)].file].path) +
                  ", \"line\": " + std::to_string(corpus.file_line(i)) + "}\n");
      }
      out.close();
    });
    io::publish_file(tmp_dir + "/duplicates/" + part, [&](const std::string& tmp) {
      io::FileWriter out(tmp);
      char sim[32];
      size_t s = 0;
      auto write_semantic = [&](const SemanticDuplicate& v) {
        std::snprintf(sim, sizeof(sim), "%.4f", v.similarity);
        const std::string& rep = ids.at(v.representative);
        out.write("{\"id\": " + id_of_local(v.row) + ", \"cluster\": " + rep +
                  ", \"representative\": " + rep + ", \"reason\": \"semantic\", \"similarity\": " +
                  sim + deduped_.location_of_local(v.row) +
                  representative_locations.at(v.representative) + "}\n");
      };
      for (const auto& v : deduped_.verdicts) {
        while (s < semantic.size() && semantic[s].row < v.row) write_semantic(semantic[s++]);
        std::snprintf(sim, sizeof(sim), "%.4f", v.similarity);
        out.write("{\"id\": " + id_of_local(v.row) + ", \"cluster\": " + ids.at(v.cluster) +
                  ", \"representative\": " + ids.at(v.representative) + ", \"reason\": \"" +
                  (v.near ? "near" : "exact") + "\", \"similarity\": " + sim +
                  deduped_.location_of_local(v.row) +
                  representative_locations.at(v.representative) + "}\n");
      }
      while (s < semantic.size()) write_semantic(semantic[s++]);
      out.close();
    });
  });
}

runtime::StageOutputs OutputsStage::save(cluster::Comm& comm,
                                          const runtime::StageContext& context) {
  if (comm.rank() != 0) return {};
  const runtime::Checkpoints& checkpoints = context.checkpoints;
  const std::string tmp_dir = checkpoints.path(kRunTmpDir);
  io::concat_parts(tmp_dir + "/ids", comm.size(), checkpoints.path("ids.jsonl"));
  io::concat_parts(tmp_dir + "/duplicates", comm.size(), checkpoints.path("duplicates.jsonl"));
  io::publish_text(checkpoints.path(kEmbedderFile), text_.embedder_text);
  std::vector<std::string> files = outputs_;
  if (!kept_.empty()) std::filesystem::create_directories(checkpoints.path("kept"));
  for (const std::string& name : kept_) {
    std::filesystem::rename(tmp_dir + "/kept/" + name, checkpoints.path("kept/" + name));
    files.push_back("kept/" + name);
  }
  runtime::remove_owned(checkpoints.run_dir(), kRunTmpDir);
  return {files};
}

}  // namespace sf::pipeline
