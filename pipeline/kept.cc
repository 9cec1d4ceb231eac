// write and kept (pipeline/kept.h): the outputs of `dedup`.
#include "pipeline/kept.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>

#include "io/atomic_file.h"
#include "io/text_output.h"
#include "pipeline/kept_shards.h"
#include "runtime/run_manifest.h"

namespace sf::pipeline {

void WriteKeptStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const runtime::Config& config = context.config;
  const std::string& dir = config.output.dir;
  const dd::LocalCorpus& corpus = flow_.corpus;
  const cluster::RowRange range = flow_.range;
  const io::TextReadOptions& read = flow_.setup.read;
  const std::vector<dd::FinalVerdict>& verdicts = flow_.verdicts;
  const int64_t local_docs = corpus.docs();
  const std::string kept_tmp = dir + "/kept.tmp", dup_tmp = dir + "/duplicates.tmp",
                    pairs_tmp = dir + "/pairs.tmp";
  std::vector<uint64_t> wanted;
  for (const auto& v : verdicts) {
    wanted.push_back(v.cluster);
    wanted.push_back(v.representative);
  }
  // dedup.write_pairs: this rank's verified pairs, exact and near, in (row, other) order.
  std::vector<std::pair<const dd::NearPair*, bool>> pairs;  // pair, near
  for (const auto& p : flow_.exact_pairs) pairs.emplace_back(&p, false);
  for (const auto& p : flow_.near_pairs) pairs.emplace_back(&p, true);
  std::sort(pairs.begin(), pairs.end(), [](const auto& x, const auto& y) {
    return std::pair(x.first->row, x.first->other) < std::pair(y.first->row, y.first->other);
  });
  for (const auto& p : pairs) wanted.push_back(p.first->other);
  auto id_of_local = [&](uint64_t row) { return flow_.id_of_local(row); };
  const auto ids = dd::fetch_by_row(comm, flow_.begins, wanted, id_of_local);
  // duplicates.jsonl: where a representative without an id is (file and line).
  std::vector<uint64_t> representatives;
  for (const auto& v : verdicts) representatives.push_back(v.representative);
  const auto representative_locations =
      dd::fetch_by_row(comm, flow_.begins, representatives,
                       [&](uint64_t row) { return flow_.location_of_local(row, "representative_"); });
  // kept/: the shards (pipeline/kept_shards.h), into kept.tmp/.
  std::vector<char> removed(static_cast<size_t>(local_docs), 0);
  for (const auto& v : verdicts) removed[v.row - range.begin] = 1;
  const WrittenShards shards = write_kept_documents(comm, flow_, removed, kept_tmp,
                                                    kept_layout(config, read.format),
                                                    context.progress);
  cluster::run_local_phase(comm, "write duplicates", [&] {
    io::publish_file(
        dup_tmp + "/" + io::part_name(comm.rank(), io::TextFormat::kJsonl),
        [&](const std::string& tmp) {
          io::FileWriter out(tmp);
          char sim[32];
          for (const auto& v : verdicts) {
            std::snprintf(sim, sizeof(sim), "%.4f", v.similarity);
            out.write("{\"id\": " + id_of_local(v.row) + ", \"cluster\": " + ids.at(v.cluster) +
                      ", \"representative\": " + ids.at(v.representative) + ", \"reason\": \"" +
                      (v.near ? "near" : "exact") + "\", \"similarity\": " + sim +
                      flow_.location_of_local(v.row) +
                      representative_locations.at(v.representative) + "}\n");
          }
          out.close();
        });
    if (config.dedup.write_pairs)
      io::publish_file(pairs_tmp + "/" + io::part_name(comm.rank(), io::TextFormat::kJsonl),
                       [&](const std::string& tmp) {
                         io::FileWriter out(tmp);
                         char sim[32];
                         for (const auto& [p, near] : pairs) {
                           std::snprintf(sim, sizeof(sim), "%.4f", p->similarity);
                           out.write("{\"a\": " + id_of_local(p->row) +
                                     ", \"b\": " + ids.at(p->other) + ", \"reason\": \"" +
                                     (near ? "near" : "exact") + "\", \"similarity\": " + sim +
                                     "}\n");
                         }
                         out.close();
                       });
  });
  out_.docs_out = flow_.total_docs - comm.sum(static_cast<int64_t>(verdicts.size()));
  out_.bytes_in = comm.sum(static_cast<int64_t>(flow_.local_bytes_in));
  out_.bytes_out = static_cast<int64_t>(shards.bytes);
  out_.shards = shards.names;
  out_.summary = {{"docs_in", flow_.total_docs},
                  {"docs_out", out_.docs_out},
                  {"bytes_in", out_.bytes_in},
                  {"bytes_out", out_.bytes_out},
                  {"exact_duplicates", flow_.exact_removed},
                  {"near_duplicates", flow_.near_removed},
                  {"clusters", flow_.clusters},
                  {"largest_cluster", flow_.largest_cluster},
                  {"bad_records", flow_.bad_total}};
}

void PublishKeptStage::configure(runtime::StageOptions& options) {
  // pairs.jsonl is one of the outputs; kept/'s shards are laid out by output.*
  options.keys({"dedup.write_pairs", "output.compression", "output.max_file_bytes"});
}

void PublishKeptStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const runtime::Config& config = context.config;
  const std::string& dir = config.output.dir;
  const io::TextReadOptions& read = flow_.setup.read;
  const dd::LshParams& lsh = flow_.setup.lsh;
  const std::string kept_dir = dir + "/kept", kept_tmp = dir + "/kept.tmp",
                    dup_tmp = dir + "/duplicates.tmp", pairs_tmp = dir + "/pairs.tmp";
  // Publish: duplicates.jsonl, then kept/, then dedup.json (the mark of a complete run).
  const nlohmann::json stages_json = runtime::gather_stage_log(comm, log_);
  // Each rank's sketch figures (seconds and text bytes of read+sketch's two steps).
  nlohmann::json sketch_json = {{"normalise_seconds", nlohmann::json::array()},
                                {"signature_seconds", nlohmann::json::array()},
                                {"text_bytes", nlohmann::json::array()},
                                {"signature_text_bytes", nlohmann::json::array()}};
  {
    const std::string text =
        nlohmann::json{flow_.corpus.normalise_seconds, flow_.corpus.signature_seconds,
                       flow_.corpus.text_bytes, flow_.corpus.signature_text_bytes}
            .dump();
    for (const auto& part : comm.gather(cluster::Bytes(text.begin(), text.end()), 0)) {
      const auto sketch = nlohmann::json::parse(std::string(part.begin(), part.end()));
      sketch_json["normalise_seconds"].push_back(sketch[0]);
      sketch_json["signature_seconds"].push_back(sketch[1]);
      sketch_json["text_bytes"].push_back(sketch[2]);
      sketch_json["signature_text_bytes"].push_back(sketch[3]);
    }
  }
  cluster::run_local_phase(comm, "publish", [&] {
    if (comm.rank() != 0) return;
    io::concat_parts(dup_tmp, comm.size(), dir + "/duplicates.jsonl");
    runtime::remove_owned(dir, "duplicates.tmp");
    if (config.dedup.write_pairs) io::concat_parts(pairs_tmp, comm.size(), dir + "/pairs.jsonl");
    // Shard by shard: files of the user's own in kept/ stay (prepare_run_dir removed ours).
    std::filesystem::create_directories(kept_dir);
    for (const std::string& name : out_.shards)
      std::filesystem::rename(kept_tmp + "/" + name, kept_dir + "/" + name);
    runtime::remove_owned(dir, "kept.tmp");
    nlohmann::json report = {
        {"format_version", kDedupJsonFormatVersion},
        {"ranks", comm.size()},
        {"threads_per_rank", flow_.threads},
        {"input",
         {{"paths", config.input.paths},
          {"format", read.format == io::TextFormat::kJsonl ? "jsonl" : "fortune"}}},
        {"params",
         {{"ngram", config.dedup.ngram},
          {"num_perm", config.dedup.near ? lsh.width() : 0},
          {"bands", lsh.bands},
          {"rows", lsh.rows},
          {"threshold", lsh.threshold},
          {"verify", config.dedup.verify},
          {"clusters", config.dedup.clusters},
          {"keep", config.dedup.keep},
          {"near", config.dedup.near},
          {"seed", config.dedup.seed},
          {"write_pairs", config.dedup.write_pairs}}},
        {"near", near_counts_json(flow_.near_stats)},
        {"bad_input", flow_.bad_report},
        {"stages", stages_json},
        {"sketch", sketch_json}};
    report["near"]["chained_members_kept"] = flow_.split_off;
    for (const auto& [k, v] : out_.summary.items()) report[k] = v;
    io::publish_text(dir + "/dedup.json", report.dump(2) + "\n");
  });
}

runtime::StageOutputs PublishKeptStage::save(cluster::Comm&,
                                              const runtime::StageContext& context) {
  runtime::StageOutputs outputs;
  for (const std::string& name : out_.shards) outputs.files.push_back("kept/" + name);
  outputs.files.insert(outputs.files.end(), {"duplicates.jsonl", "dedup.json"});
  if (context.config.dedup.write_pairs) outputs.files.push_back("pairs.jsonl");
  outputs.info = out_.summary;
  return outputs;
}

}  // namespace sf::pipeline
