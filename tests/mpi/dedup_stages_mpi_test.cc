// MPI tests (1, 2 and 4 ranks) of the dedup stages as commands run them (pipeline/text_dedup.h on
// the runner of runtime/stage_runner.h), in process: on a corpus with planted exact and near
// duplicates, read+sketch -> exact -> near -> verdicts finds exactly the planted ones; a
// resumed run reads every rank's sketch back without its signatures (the verdicts verify),
// skips exact and near, reads the verdicts back, and ends with the same verdicts.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "cluster/archive.h"
#include "runtime/checkpoint.h"
#include "runtime/stage_runner.h"
#include "pipeline/text_dedup.h"
#include "tests/mpi/mpi_env.h"
#include "tests/mpi/mpi_test_support.h"

namespace sf::pipeline {
namespace {

using sf::testing::problems_on_any_rank;
using sf::testing::world;

// 120 distinct documents of 80 words; then 15 exact copies (upper case: the same normalised
// text) and 15 near copies (the last of 80 words changed) of distinct originals. Rows: originals
// 0..119, exact copies 120..134, near copies 135..149.
struct Planted {
  std::set<uint64_t> exact, near;  // rows of the copies
};

Planted write_corpus(const std::string& path) {
  uint64_t state = 12345;
  auto next = [&] {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return state >> 33;
  };
  std::vector<std::vector<std::string>> docs(120);
  for (auto& words : docs)
    for (int w = 0; w < 80; ++w) words.push_back("w" + std::to_string(next() % 5000));
  auto text = [](const std::vector<std::string>& words, bool upper) {
    std::string t;
    for (const auto& w : words) t += (t.empty() ? "" : " ") + w;
    if (upper) std::transform(t.begin(), t.end(), t.begin(), ::toupper);
    return t;
  };
  std::ofstream out(path);
  Planted planted;
  uint64_t row = 0;
  for (const auto& d : docs) out << "{\"id\": " << row++ << ", \"text\": \"" << text(d, false) << "\"}\n";
  for (int k = 0; k < 15; ++k) {
    planted.exact.insert(row);
    out << "{\"id\": " << row++ << ", \"text\": \"" << text(docs[k * 7], true) << "\"}\n";
  }
  for (int k = 0; k < 15; ++k) {
    std::vector<std::string> words = docs[k * 7 + 3];
    words.back() = "changed";
    planted.near.insert(row);
    out << "{\"id\": " << row++ << ", \"text\": \"" << text(words, false) << "\"}\n";
  }
  return planted;
}

struct Result {
  std::vector<std::tuple<uint64_t, uint64_t, bool>> verdicts;  // all ranks: row, rep, near
  runtime::StageOutcome exact, near, verdicts_outcome;
  int sketches_reused = 0;
  size_t signatures = 0;  // this rank's, after reading
};

Result run_dedup(cluster::Comm& comm, const runtime::Config& config) {
  const runtime::Checkpoints checkpoints(config.output.dir);
  runtime::StageLog log;
  runtime::StageRunner runner(comm, config, checkpoints, log, {});
  DedupedCorpus flow;
  flow.ranks = comm.size();
  ReadSketchStage read(flow, /*dedup=*/true);
  ExactStage exact(flow);
  NearStage near(flow);
  VerdictsStage verdicts(flow);
  runner.run({&read, &exact, &near, &verdicts});
  Result r;
  r.exact = runner.outcome("exact");
  r.near = runner.outcome("near");
  r.verdicts_outcome = runner.outcome("verdicts");
  r.sketches_reused = flow.sketches_reused;
  r.signatures = flow.corpus.signatures.size();
  std::vector<uint64_t> mine;  // row, representative, near per verdict
  for (const auto& v : flow.verdicts) mine.insert(mine.end(), {v.row, v.representative, v.near});
  for (const auto& part : cluster::allgather_as(comm, mine, "verdicts"))
    for (size_t i = 0; i + 2 < part.size(); i += 3)
      r.verdicts.emplace_back(part[i], part[i + 1], part[i + 2] != 0);
  return r;
}

TEST(MpiDedupStages, FindThePlantedDuplicatesAndResumeFromTheirCheckpoints) {
  cluster::Comm& comm = world();
  const testing::SharedTempDir dir(comm);
  Planted planted;
  if (comm.rank() == 0) {
    planted = write_corpus(dir.file("corpus.jsonl"));
    std::ofstream(dir.file("c.yaml"))
        << "input:\n  paths: [" << dir.file("corpus.jsonl") << "]\n  format: jsonl\n"
        << "dedup:\n  threshold: 0.7\n  num_perm: 128\noutput:\n  dir: " << dir.file("run")
        << "\n";
    for (const char* sub : {kSketchDir, kVerdictsDir})
      std::filesystem::create_directories(dir.file(std::string("run/") + sub));
  }
  comm.barrier();
  std::string problem;
  auto expect = [&](bool ok, const std::string& what) {
    if (!ok) problem += what + "; ";
  };

  runtime::Config config = runtime::load_config(dir.file("c.yaml"));
  const Result first = run_dedup(comm, config);
  if (comm.rank() == 0) {
    std::set<uint64_t> exact, near;
    for (const auto& [row, rep, is_near] : first.verdicts) (is_near ? near : exact).insert(row);
    expect(exact == planted.exact, "exact rows differ from the planted ones");
    std::string found;
    for (uint64_t row : near) found += " " + std::to_string(row);
    expect(near == planted.near, "near rows differ from the planted ones:" + found);
    for (const auto& [row, rep, is_near] : first.verdicts)
      expect(rep < 120, "row " + std::to_string(row) + " kept " + std::to_string(rep));
  }
  expect(first.exact == runtime::StageOutcome::kRun && first.sketches_reused == 0, "first run");

  config.resume = true;
  const Result resumed = run_dedup(comm, config);
  expect(resumed.exact == runtime::StageOutcome::kSkipped &&
             resumed.near == runtime::StageOutcome::kSkipped,
         "resumed: exact / near not skipped");
  expect(resumed.verdicts_outcome == runtime::StageOutcome::kLoaded, "resumed: verdicts not read back");
  expect(resumed.sketches_reused == comm.size(),
         "resumed: " + std::to_string(resumed.sketches_reused) + " sketches read back");
  expect(resumed.signatures == 0, "resumed: signatures read though the verdicts verified");
  expect(resumed.verdicts == first.verdicts, "resumed: other verdicts");

  const std::string all = problems_on_any_rank(comm, problem);
  if (comm.rank() == 0) {
    EXPECT_EQ(all, "");
  }
}

}  // namespace
}  // namespace sf::pipeline
