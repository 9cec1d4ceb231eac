#include "runtime/config.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace sf::runtime {
namespace {

constexpr const char* kMinimal =
    "input:\n"
    "  paths: [a.fvecs]\n"
    "index:\n"
    "  factory: IVF64,Flat\n"
    "output:\n"
    "  dir: out\n";

class ConfigTest : public ::testing::Test {
 protected:
  // Writes `text` to a file in the temp dir and returns its path.
  std::string write(const std::string& text, const std::string& name = "job.yaml") {
    std::string path = dir_.file(name);
    std::ofstream(path) << text;
    return path;
  }

  // The ConfigError message of loading `text` with `overrides`; fails the test if none.
  std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
    std::string path = write(text);
    try {
      load_config(path, overrides);
    } catch (const ConfigError& e) {
      return e.what();
    }
    ADD_FAILURE() << "no ConfigError for:\n" << text;
    return "";
  }

  sf::testing::TempDir dir_;
};

TEST_F(ConfigTest, DefaultsFilled) {
  std::string path = write(kMinimal);
  Config config = load_config(path);
  EXPECT_EQ(config.source, path);
  EXPECT_EQ(config.input.paths, std::vector<std::string>{"a.fvecs"});
  // Everything else is the struct default (config.h is the single source of defaults).
  const Config defaults;
  EXPECT_EQ(config.input.format, defaults.input.format);
  EXPECT_EQ(config.input.dataset, defaults.input.dataset);
  EXPECT_EQ(config.input.batch_rows, defaults.input.batch_rows);
  EXPECT_EQ(config.index.factory, "IVF64,Flat");
  EXPECT_EQ(config.index.metric, defaults.index.metric);
  EXPECT_EQ(config.index.train_size, defaults.index.train_size);
  EXPECT_EQ(config.index.kmeans_iterations, defaults.index.kmeans_iterations);
  EXPECT_EQ(config.index.codebook_sample, defaults.index.codebook_sample);
  EXPECT_EQ(config.seed, defaults.seed);
  EXPECT_EQ(config.threads, defaults.threads);
  EXPECT_EQ(config.output.dir, "out");
  EXPECT_EQ(config.eval.queries, defaults.eval.queries);
  EXPECT_EQ(config.eval.queries_dataset, defaults.eval.queries_dataset);
  EXPECT_EQ(config.eval.ground_truth, defaults.eval.ground_truth);
  EXPECT_EQ(config.eval.k, defaults.eval.k);
  EXPECT_EQ(config.eval.nprobe, defaults.eval.nprobe);
  EXPECT_EQ(config.eval.max_queries, defaults.eval.max_queries);
  // A few literal spot checks of the documented defaults.
  EXPECT_EQ(config.input.format, "auto");
  EXPECT_EQ(config.index.metric, "l2");
  EXPECT_EQ(config.eval.nprobe, (std::vector<int>{1, 8, 32}));

  // resolved holds every key, defaults included.
  const YAML::Node& r = config.resolved;
  ASSERT_TRUE(r.IsMap());
  EXPECT_EQ(r["input"]["format"].as<std::string>(), defaults.input.format);
  EXPECT_EQ(r["input"]["batch_rows"].as<int64_t>(), defaults.input.batch_rows);
  EXPECT_EQ(r["index"]["kmeans_iterations"].as<int>(), defaults.index.kmeans_iterations);
  EXPECT_EQ(r["seed"].as<uint64_t>(), defaults.seed);
  EXPECT_EQ(r["threads"].as<int>(), defaults.threads);
  EXPECT_EQ(r["eval"]["nprobe"].as<std::vector<int>>(), defaults.eval.nprobe);
  EXPECT_EQ(r["eval"]["queries"].as<std::string>(), "");
  EXPECT_EQ(r["output"]["dir"].as<std::string>(), "out");
}

TEST_F(ConfigTest, FileValuesOverrideDefaults) {
  std::string text = std::string(kMinimal) +
                     "seed: 18446744073709551615\n"
                     "threads: 4\n"
                     "eval:\n"
                     "  k: 1024\n"
                     "  nprobe: [2, 4]\n"
                     "  queries: q.fvecs\n";
  Config config = load_config(write(text));
  EXPECT_EQ(config.seed, UINT64_MAX);
  EXPECT_EQ(config.threads, 4);
  EXPECT_EQ(config.eval.k, 1024);
  EXPECT_EQ(config.eval.nprobe, (std::vector<int>{2, 4}));
  EXPECT_EQ(config.eval.queries, "q.fvecs");
}

TEST_F(ConfigTest, SingleValuesAcceptedAsOneElementLists) {
  Config config = load_config(
      write("input: {paths: only.fvecs}\nindex: {factory: 'IVF8,Flat'}\noutput: {dir: o}\n"
            "eval: {nprobe: 16}\n"));
  EXPECT_EQ(config.input.paths, std::vector<std::string>{"only.fvecs"});
  EXPECT_EQ(config.eval.nprobe, std::vector<int>{16});
}

TEST_F(ConfigTest, OverrideScalar) {
  Config config = load_config(write(kMinimal), {"index.train_size=1000", "index.metric=ip",
                                                "index.factory=OPQ16_64,IVF256,PQ16"});
  EXPECT_EQ(config.index.train_size, 1000);
  EXPECT_EQ(config.index.metric, "ip");
  EXPECT_EQ(config.index.factory, "OPQ16_64,IVF256,PQ16");
  EXPECT_EQ(config.resolved["index"]["train_size"].as<int64_t>(), 1000);
}

TEST_F(ConfigTest, OverrideList) {
  Config config =
      load_config(write(kMinimal), {"eval.nprobe=[1,8,32,64]", "input.paths=[a.fvecs,b.fvecs]"});
  EXPECT_EQ(config.eval.nprobe, (std::vector<int>{1, 8, 32, 64}));
  EXPECT_EQ(config.input.paths, (std::vector<std::string>{"a.fvecs", "b.fvecs"}));
}

TEST_F(ConfigTest, OverrideCreatesNestedMaps) {
  // No eval or output section in the file: the overrides create them.
  Config config = load_config(write("input: {paths: [a.fvecs]}\nindex: {factory: 'IVF8,Flat'}\n"),
                              {"eval.k=5", "output.dir=/tmp/x"});
  EXPECT_EQ(config.eval.k, 5);
  EXPECT_EQ(config.output.dir, "/tmp/x");
}

TEST_F(ConfigTest, OverridesApplyInOrder) {
  Config config = load_config(write(kMinimal), {"eval.k=5", "eval.k=7", "eval={k: 9}"});
  EXPECT_EQ(config.eval.k, 9);
  EXPECT_EQ(config.eval.nprobe, (std::vector<int>{1, 8, 32}));  // whole section replaced
}

TEST_F(ConfigTest, UnknownTopLevelKey) {
  std::string message = error_of(std::string(kMinimal) + "bogus: 1\n");
  EXPECT_NE(message.find(dir_.file("job.yaml")), std::string::npos) << message;
  EXPECT_NE(message.find("unknown key 'bogus'"), std::string::npos) << message;
  EXPECT_EQ(message.find("did you mean"), std::string::npos) << message;
}

TEST_F(ConfigTest, UnknownNestedKeyWithHint) {
  std::string message =
      error_of("input: {paths: [a.fvecs]}\nindex:\n  facotry: IVF8,Flat\noutput: {dir: o}\n");
  EXPECT_EQ(message, dir_.file("job.yaml") +
                         ": unknown key 'index.facotry' (did you mean 'index.factory'?)");
}

TEST_F(ConfigTest, UnknownSectionWithHint) {
  std::string message = error_of(std::string(kMinimal) + "evl: {k: 3}\n");
  EXPECT_NE(message.find("unknown key 'evl' (did you mean 'eval'?)"), std::string::npos) << message;
}

TEST_F(ConfigTest, UnknownKeyFromOverride) {
  std::string message = error_of(kMinimal, {"eval.nprobes=[1]"});
  EXPECT_NE(message.find("unknown key 'eval.nprobes'"), std::string::npos) << message;
  EXPECT_NE(message.find("did you mean 'eval.nprobe'?"), std::string::npos) << message;
  EXPECT_NE(message.find("--set eval.nprobes=[1]"), std::string::npos) << message;
}

// Regression (issue 12): yaml-cpp keeps both entries of a repeated key and the last one won
// silently. A duplicate is an error at every level, naming the key and both lines.
TEST_F(ConfigTest, DuplicateKeysNameTheKeyAndBothLines) {
  const std::string file = dir_.file("job.yaml");
  EXPECT_EQ(error_of("input: {paths: [a.fvecs]}\nindex:\n  factory: IVF8,Flat\n  metric: l2\n"
                     "  factory: IVF16,Flat\noutput: {dir: o}\n"),
            file + ": duplicate key 'index.factory' (lines 3 and 5)");
  EXPECT_EQ(error_of(std::string(kMinimal) + "index:\n  metric: ip\n"),
            file + ": duplicate key 'index' (lines 3 and 7)");
  EXPECT_EQ(error_of(std::string(kMinimal) + "seed: 1\nseed: 2\n"),
            file + ": duplicate key 'seed' (lines 7 and 8)");
  // In a flow map, and in a map inside a list (no such key is valid, but the duplicate is
  // reported first: it is the more precise message).
  EXPECT_EQ(error_of("input: {paths: [a.fvecs], paths: [b.fvecs]}\nindex: {factory: x}\n"),
            file + ": duplicate key 'input.paths' (lines 1 and 1)");
  EXPECT_EQ(error_of(std::string(kMinimal) + "eval:\n  nprobe:\n    - {a: 1,\n       a: 2}\n"),
            file + ": duplicate key 'eval.nprobe[0].a' (lines 9 and 10)");
  EXPECT_EQ(error_of(kMinimal, {"index={factory: a, factory: b}"}),
            "--set index={factory: a, factory: b}: duplicate key 'index.factory'");
  // The same key in two different maps is not a duplicate.
  Config config = load_config(write(std::string(kMinimal) + "eval: {k: 5}\nsearch: {k: 7}\n"));
  EXPECT_EQ(config.eval.k, 5);
  EXPECT_EQ(config.search.k, 7);
}

// Regression (issue 12): configs/sift-5k.yaml read a data folder outside the repository. Every
// shipped config loads, and each of its data paths is in the repository (tests/data), made by
// a script of it (data/), or installed by a Debian package (/usr/share).
TEST_F(ConfigTest, ShippedConfigsReadOnlyInsideTheRepository) {
  namespace fs = std::filesystem;
  const fs::path root = fs::path(sf::testing::data_dir()).parent_path().parent_path();
  int configs = 0;
  for (const auto& entry : fs::directory_iterator(root / "configs")) {
    if (entry.path().extension() != ".yaml") continue;
    ++configs;
    const std::string name = entry.path().filename().string();
    Config config;
    ASSERT_NO_THROW(config = load_config(entry.path().string())) << name;
    std::vector<std::string> paths = config.input.paths;
    if (!config.eval.queries.empty()) paths.push_back(config.eval.queries);
    for (const std::string& path : paths) {
      EXPECT_EQ(path.find(".."), std::string::npos) << name << ": " << path;
      if (path.rfind("/usr/share/", 0) == 0 || path.rfind("data/", 0) == 0) continue;
      EXPECT_TRUE(fs::exists(root / path)) << name << ": " << path << " is not in the repository";
    }
  }
  EXPECT_GE(configs, 8);
}

TEST_F(ConfigTest, WrongTypeInteger) {
  std::string message = error_of(std::string(kMinimal) + "eval: {k: abc}\n");
  EXPECT_EQ(message, dir_.file("job.yaml") + ": eval.k: expected an integer, got 'abc'");
  EXPECT_NE(error_of(std::string(kMinimal) + "eval: {k: 2.5}\n").find("expected an integer"),
            std::string::npos);
  EXPECT_NE(error_of(std::string(kMinimal) + "seed: 99999999999999999999\n").find("out of range"),
            std::string::npos);
}

TEST_F(ConfigTest, WrongTypeShape) {
  // A map where a scalar is expected.
  std::string message = error_of(std::string(kMinimal) + "threads: {a: 1}\n");
  EXPECT_NE(message.find("threads: expected an integer, got a map"), std::string::npos) << message;
  // A scalar where a section (map) is expected.
  message = error_of("input: {paths: [a]}\nindex: 5\noutput: {dir: o}\n");
  EXPECT_NE(message.find("index: expected a map, got '5'"), std::string::npos) << message;
  // A list where a string is expected.
  message = error_of(std::string(kMinimal) + "eval: {queries: [a, b]}\n");
  EXPECT_NE(message.find("eval.queries: expected a string, got a list"), std::string::npos)
      << message;
  // A map where a list is expected.
  message = error_of(kMinimal, {"eval.nprobe={a: 1}"});
  EXPECT_NE(message.find("eval.nprobe: expected a list, got a map"), std::string::npos) << message;
  // A bad list element names its index.
  message = error_of(kMinimal, {"eval.nprobe=[1, x]"});
  EXPECT_NE(message.find("eval.nprobe[1]: expected an integer, got 'x'"), std::string::npos)
      << message;
}

TEST_F(ConfigTest, RequiredMissing) {
  std::string path = write("input: {paths: [a.fvecs]}\nindex: {factory: 'IVF8,Flat'}\n");
  try {
    load_config(path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), path + ": output.dir is required");
  }
  EXPECT_NE(
      error_of("index: {factory: 'IVF8,Flat'}\noutput: {dir: o}\n").find("input.paths is required"),
      std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"input.paths=[]"}).find("input.paths: must not be empty"),
            std::string::npos);
  // index.factory may be empty for load_config (dedup needs no index); build requires it.
  Config no_factory = load_config(write(kMinimal), {"index.factory="});
  EXPECT_EQ(no_factory.index.factory, "");
  try {
    require(no_factory, {"output.dir", "index.factory"});
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(": index.factory is required"), std::string::npos);
  }
  EXPECT_NO_THROW(require(load_config(write(kMinimal)), {"index.factory", "input.paths"}));
  EXPECT_NE(error_of(kMinimal, {"output.dir=''"}).find("output.dir: must not be empty"),
            std::string::npos);
  // An empty file is an empty map: the first required key is reported.
  EXPECT_NE(error_of("").find("input.paths is required"), std::string::npos);
}

TEST_F(ConfigTest, BadEnumValue) {
  std::string message = error_of(
      "input: {paths: [a], format: csv}\nindex: {factory: 'IVF8,Flat'}\noutput: {dir: o}\n");
  EXPECT_NE(message.find("input.format: expected one of auto|hdf5|fvecs|bvecs|npy|idx|jsonl|fortune, got 'csv'"),
            std::string::npos)
      << message;
  message = error_of(kMinimal, {"index.metric=cosine"});
  EXPECT_NE(message.find("index.metric: expected one of l2|ip, got 'cosine'"), std::string::npos)
      << message;
  EXPECT_NE(message.find("--set index.metric=cosine"), std::string::npos) << message;
}

TEST_F(ConfigTest, KeptShardKeys) {
  Config config = load_config(write(kMinimal));
  EXPECT_EQ(config.output.compression, "zstd");
  EXPECT_EQ(config.output.max_file_bytes.bytes, uint64_t{1} << 30);
  EXPECT_FALSE(config.run.write_kept);
  config = load_config(write(kMinimal), {"output.max_file_bytes=256MiB", "output.compression=gzip",
                                         "run.write_kept=true"});
  EXPECT_EQ(config.output.max_file_bytes.bytes, uint64_t{256} << 20);
  EXPECT_EQ(config.output.compression, "gzip");
  EXPECT_TRUE(config.run.write_kept);
  EXPECT_EQ(load_config(write(kMinimal), {"output.max_file_bytes=5000"}).output.max_file_bytes.bytes,
            5000u);
  EXPECT_NE(error_of(kMinimal, {"output.max_file_bytes=0"})
                .find("output.max_file_bytes: must be at least 1 bytes, got 0"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"output.compression=lz4"}).find("output.compression"),
            std::string::npos);
}

TEST_F(ConfigTest, RangeChecksNameTheOverride) {
  std::string message = error_of(kMinimal, {"eval.k=0"});
  EXPECT_EQ(message, dir_.file("job.yaml") +
                         ": eval.k: must be between 1 and 1024, got 0 (from --set eval.k=0)");
  EXPECT_NE(error_of(kMinimal, {"eval.k=1025"}).find("between 1 and 1024"), std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"threads=-1"}).find("threads: must be >= 0, got -1"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"seed=-5"}).find("seed: must be >= 0, got -5"), std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"input.batch_rows=0"}).find("input.batch_rows: must be >= 1"),
            std::string::npos);
  message = error_of(kMinimal, {"eval.nprobe=[4, 0]"});
  EXPECT_NE(message.find("eval.nprobe[1]: must be >= 1, got 0 (from --set eval.nprobe=[4, 0])"),
            std::string::npos)
      << message;
  // An override below a scalar key turns it into a map; the override is named.
  message = error_of(kMinimal, {"seed.x=1"});
  EXPECT_NE(message.find("seed: expected an integer, got a map (from --set seed.x=1)"),
            std::string::npos)
      << message;
  // int fields are bounded by int's range too.
  EXPECT_NE(error_of(kMinimal, {"threads=3000000000"}).find("threads: must be <= 2147483647"),
            std::string::npos);
  // A section replaced by an override is attributed to it.
  message = error_of(kMinimal, {"eval={k: 0}"});
  EXPECT_NE(message.find("(from --set eval={k: 0})"), std::string::npos) << message;
  // A later override of a different key does not take the blame for a file value.
  message = error_of(std::string(kMinimal) + "eval: {k: 0}\n", {"eval.max_queries=5"});
  EXPECT_EQ(message.find("--set"), std::string::npos) << message;
}

TEST_F(ConfigTest, FixedLengthListsNameTheCount) {
  // partition.scan_cost is [a, b]: one number, or three, used to be ignored (calibrated).
  std::string message = error_of(kMinimal, {"partition.scan_cost=[1e-6, 2e-9, 3]"});
  EXPECT_NE(message.find("partition.scan_cost: expected a list of 2 values, got 3 "
                         "(from --set partition.scan_cost=[1e-6, 2e-9, 3])"),
            std::string::npos)
      << message;
  EXPECT_NE(error_of(kMinimal, {"partition.scan_cost=1e-6"}).find("a list of 2 values, got 1"),
            std::string::npos);
  EXPECT_EQ(load_config(write(kMinimal), {"partition.scan_cost=[1e-6, 2e-9]"}).partition.scan_cost,
            (std::vector<double>{1e-6, 2e-9}));
}

TEST_F(ConfigTest, MalformedSet) {
  for (std::string bad : {"eval.k", "=5", "eval..k=5", ".k=1", "k.=1", " =1"}) {
    std::string message = error_of(kMinimal, {bad});
    EXPECT_EQ(message, "--set " + bad + ": expected key=value");
  }
  EXPECT_NE(error_of(kMinimal, {"eval.nprobe=[1,"}).find("--set eval.nprobe=[1,"),
            std::string::npos);
}

TEST_F(ConfigTest, YamlSyntaxErrorNamesFileAndLine) {
  std::string message = error_of("input:\n  paths: [a.fvecs\nindex: {factory: x}\n");
  EXPECT_EQ(message.rfind(dir_.file("job.yaml") + ":", 0), 0u) << message;
  EXPECT_NE(message.find("YAML syntax error"), std::string::npos) << message;
  message = error_of("input:\n  paths: [a]\n bad indent: 1\n");
  EXPECT_EQ(message.rfind(dir_.file("job.yaml") + ":3:", 0), 0u) << message;
}

TEST_F(ConfigTest, MissingFileNamesFile) {
  std::string path = dir_.file("nope.yaml");
  try {
    load_config(path);
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path + ": ", 0), 0u) << e.what();
  }
  try {
    load_config(dir_.path());
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir_.path() + ": ", 0), 0u) << e.what();
  }
}

TEST_F(ConfigTest, TopLevelMustBeAMap) {
  EXPECT_NE(error_of("- a\n- b\n").find("top level must be a map"), std::string::npos);
  EXPECT_NE(error_of("just a string\n").find("top level must be a map"), std::string::npos);
}

TEST_F(ConfigTest, ToYamlRoundTrips) {
  Config first = load_config(
      write(kMinimal), {"input.paths=[a.fvecs, 'b c.fvecs', 'null']", "seed=18446744073709551615",
                        "eval.nprobe=[3,5]", "eval.queries=q.hdf5", "index.metric=ip",
                        "input.format=fvecs", "threads=2", "eval.max_queries=100"});
  std::string text = to_yaml(first);
  EXPECT_EQ(text, to_yaml(first));  // stable

  std::string again_path = write(text, "resolved.yaml");
  Config second = load_config(again_path);
  EXPECT_EQ(second.input.paths, (std::vector<std::string>{"a.fvecs", "b c.fvecs", "null"}));
  EXPECT_EQ(second.input.paths, first.input.paths);
  EXPECT_EQ(second.input.format, first.input.format);
  EXPECT_EQ(second.input.dataset, first.input.dataset);
  EXPECT_EQ(second.input.batch_rows, first.input.batch_rows);
  EXPECT_EQ(second.index.factory, first.index.factory);
  EXPECT_EQ(second.index.metric, first.index.metric);
  EXPECT_EQ(second.index.train_size, first.index.train_size);
  EXPECT_EQ(second.index.kmeans_iterations, first.index.kmeans_iterations);
  EXPECT_EQ(second.index.codebook_sample, first.index.codebook_sample);
  EXPECT_EQ(second.seed, UINT64_MAX);
  EXPECT_EQ(second.threads, 2);
  EXPECT_EQ(second.output.dir, first.output.dir);
  EXPECT_EQ(second.eval.queries, "q.hdf5");
  EXPECT_EQ(second.eval.queries_dataset, first.eval.queries_dataset);
  EXPECT_EQ(second.eval.ground_truth, first.eval.ground_truth);
  EXPECT_EQ(second.eval.k, first.eval.k);
  EXPECT_EQ(second.eval.nprobe, (std::vector<int>{3, 5}));
  EXPECT_EQ(second.eval.max_queries, 100);
  EXPECT_EQ(to_yaml(second), text);
}

TEST_F(ConfigTest, ToYamlFollowsSchemaOrder) {
  // File order differs from schema order; output follows the schema.
  Config config =
      load_config(write("output: {dir: o}\neval: {k: 3}\nseed: 7\n"
                        "index: {factory: 'IVF8,Flat'}\ninput: {paths: [a]}\n"));
  std::istringstream text(to_yaml(config));
  std::vector<std::string> keys;
  for (std::string line; std::getline(text, line);) keys.push_back(line.substr(0, line.find(':')));
  std::vector<std::string> expected = {"input",
                                       "  paths",
                                       "  glob",
                                       "  format",
                                       "  dataset",
                                       "  batch_rows",
                                       "  text_field",
                                       "  id_field",
                                       "  strict",
                                       "  max_record_bytes",
                                       "  verify",
                                       "index",
                                       "  factory",
                                       "  metric",
                                       "  train_size",
                                       "  kmeans_iterations",
                                       "  codebook_sample", "  memory_budget", "  target_recall", "  tune_rows", "  tune_queries",
                                       "resources",
                                       "  memory_per_rank",
                                       "seed",
                                       "threads",
                                       "output",
                                       "  dir",
                                       "  piece_rows",
                                       "  compression",
                                       "  max_file_bytes",
                                       "  layout",
                                       "eval",
                                       "  queries",
                                       "  queries_dataset",
                                       "  ground_truth",
                                       "  k",
                                       "  nprobe",
                                       "  max_queries", "  target_recall", "dedup", "  ngram", "  num_perm", "  bands",
      "  rows", "  threshold", "  verify", "  clusters", "  keep", "  seed", "  near", "  unicode",
      "  punctuation", "  fold_digits", "  write_pairs",
                                       "partition", "  workload", "  workload_dataset", "  weights",
                                       "  weights_dataset", "  shards", "  nprobe", "  max_nlist",
                                       "  tiers", "  replicate_hot", "  colocate",
                                       "  colocate_slack", "  scan_cost",
                                       "search", "  queries", "  queries_dataset", "  k", "  nprobe",
                                       "  max_queries", "  batch_queries",
                                       "run",
                                       "  dedup",
                                       "  semdedup",
                                       "  index",
                                       "  eval",
                                       "  write_kept",
                                       "embed",
                                       "  method",
                                       "  dim",
                                       "  seed",
                                       "  vectors",
                                       "  vectors_dataset",
                                       "  vectors_field",
                                       "  batch",
                                       "semdedup",
                                       "  eps",
                                       "  report_eps", "slurm", "  job_name", "  nodes", "  ntasks", "  ntasks_per_node",
      "  cpus_per_task", "  time", "  partition", "  account"};
  EXPECT_EQ(keys, expected);
}

TEST_F(ConfigTest, DedupKeys) {
  Config config = load_config(write(kMinimal));
  EXPECT_EQ(config.dedup.ngram, 5);
  EXPECT_EQ(config.dedup.num_perm, 112);
  EXPECT_EQ(config.dedup.bands * config.dedup.rows, 112);
  EXPECT_EQ(config.dedup.threshold, 0.8);
  EXPECT_EQ(config.dedup.keep, "first");
  EXPECT_EQ(config.input.text_field, "text");
  EXPECT_EQ(config.input.id_field, "id");
  EXPECT_FALSE(config.input.strict);
  config = load_config(write(kMinimal), {"dedup.threshold=0.7", "input.strict=true",
                                         "input.format=fortune", "dedup.punctuation=space"});
  EXPECT_EQ(config.dedup.threshold, 0.7);
  EXPECT_TRUE(config.input.strict);
  EXPECT_EQ(config.input.format, "fortune");
  EXPECT_NE(error_of(kMinimal, {"dedup.threshold=1.5"}).find("dedup.threshold: must be between"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"dedup.punctuation=drop"}).find("dedup.punctuation"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"dedup.ngrm=3"}).find("did you mean 'dedup.ngram'"),
            std::string::npos);
  EXPECT_NE(error_of(kMinimal, {"dedup.seed=-1"}).find("dedup.seed"), std::string::npos);
}

TEST_F(ConfigTest, PartitionAndSearchKeysRoundTripThroughToYaml) {
  Config config = load_config(write("input: {paths: [a]}\noutput: {dir: o}\n"
                                    "partition: {workload: w.fvecs, shards: 4, tiers: 6}\n"
                                    "search: {queries: q.fvecs, nprobe: 16}\n"));
  EXPECT_EQ(config.partition.shards, 4);
  EXPECT_EQ(config.partition.tiers, 6);
  EXPECT_TRUE(config.partition.scan_cost.empty());  // default: calibrate
  EXPECT_EQ(config.search.nprobe, 16);
  // The effective config (an empty scan_cost is written as null) loads back the same.
  const Config again = load_config(write(to_yaml(config)));
  EXPECT_EQ(to_yaml(again), to_yaml(config));
  EXPECT_TRUE(again.partition.scan_cost.empty());
  config = load_config(write("input: {paths: [a]}\noutput: {dir: o}\npartition: {scan_cost: [1.0e-6, 2.0e-9]}\n"));
  EXPECT_EQ(config.partition.scan_cost, (std::vector<double>{1.0e-6, 2.0e-9}));
  EXPECT_THROW(load_config(write("input: {paths: [a]}\noutput: {dir: o}\npartition: {tiers: 0}\n")),
               ConfigError);
  EXPECT_THROW(load_config(write("input: {paths: [a]}\noutput: {dir: o}\npartition: {shards: -1}\n")),
               ConfigError);
  config = load_config(write("input: {paths: [a]}\noutput: {dir: o}\n"
                             "partition: {colocate: false, colocate_slack: 0.2}\n"));
  EXPECT_FALSE(config.partition.colocate);
  EXPECT_DOUBLE_EQ(config.partition.colocate_slack, 0.2);
  EXPECT_THROW(load_config(write("input: {paths: [a]}\noutput: {dir: o}\n"
                                 "partition: {colocate_slack: 1.5}\n")),
               ConfigError);
}

}  // namespace
}  // namespace sf::runtime
