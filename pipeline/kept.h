// The outputs of `dedup` (commands/dedup.h), made from the verdicts by two stages after the dedup
// stages of pipeline/text_dedup.h:
//   write  the ranks write kept/'s shards into kept.tmp/ (pipeline/kept_shards.h: the kept
//          documents read again, JSONL lines not parsed again), and each rank its part of
//          duplicates.jsonl and (dedup.write_pairs) pairs.jsonl into duplicates.tmp/,
//          pairs.tmp/. No checkpoint of its own.
//   kept   rank 0 publishes duplicates.jsonl, pairs.jsonl, kept/ and then dedup.json (the mark
//          of a complete run); marker "kept".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "runtime/run_dir.h"
#include "runtime/stage_runner.h"
#include "pipeline/text_dedup.h"

namespace sf::pipeline {

constexpr int kDedupJsonFormatVersion = 1;

// What write hands to kept.
struct KeptOutputs {
  int64_t docs_out = 0, bytes_in = 0, bytes_out = 0;  // global
  nlohmann::json summary;  // run.json's and the kept marker's: the counts
  std::vector<std::string> shards;  // kept/'s files (pipeline/kept_shards.h), in order
};

class WriteKeptStage : public runtime::TransientStage {
 public:
  WriteKeptStage(const DedupedCorpus& flow, KeptOutputs& out) : flow_(flow), out_(out) {}
  std::string name() const override { return "write"; }
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;

 private:
  const DedupedCorpus& flow_;
  KeptOutputs& out_;
};

class PublishKeptStage : public runtime::Stage {
 public:
  // `log`: the command's, whose stages dedup.json reports.
  PublishKeptStage(const DedupedCorpus& flow, const KeptOutputs& out,
                   const runtime::StageLog& log)
      : flow_(flow), out_(out), log_(log) {}
  std::string name() const override { return "kept"; }
  void configure(runtime::StageOptions& options) override;
  void run(cluster::Comm& comm, const runtime::StageContext& context) override;
  runtime::StageOutputs save(cluster::Comm& comm, const runtime::StageContext& context) override;
  void load(cluster::Comm&, const runtime::StageContext&, const nlohmann::json&) override {}

 private:
  const DedupedCorpus& flow_;
  const KeptOutputs& out_;
  const runtime::StageLog& log_;
};

}  // namespace sf::pipeline
