// pipeline/checkpoint.h: fingerprints follow the keys a stage depends on, and a completion
// marker verifies only while its outputs are byte for byte what it recorded.
#include "pipeline/checkpoint.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "pipeline/config.h"
#include "tests/test_util.h"

namespace sf::pipeline {
namespace {

class CheckpointTest : public ::testing::Test {
 protected:
  Config config(const std::vector<std::string>& overrides = {}) {
    const std::string path = dir_.file("job.yaml");
    std::ofstream(path) << "input:\n  paths: [a.fvecs]\nindex:\n  factory: IVF64,Flat\n"
                           "output:\n  dir: " << dir_.path() << "\n";
    return load_config(path, overrides);
  }
  Fingerprint train_fp(const Config& c) {
    Fingerprint fp("train");
    fp.keys(c, {"index.factory", "index.kmeans_iterations", "seed"});
    return fp;
  }
  void write(const std::string& rel, const std::string& text) {
    std::filesystem::create_directories(std::filesystem::path(dir_.file(rel)).parent_path());
    io::publish_text(dir_.file(rel), text);
  }
  testing::TempDir dir_;
};

TEST_F(CheckpointTest, FingerprintFollowsOnlyTheKeysItNames) {
  const std::string base = train_fp(config()).hex();
  EXPECT_EQ(base.size(), 16u);
  EXPECT_EQ(train_fp(config()).hex(), base) << "not deterministic";
  EXPECT_EQ(train_fp(config({"input.batch_rows=7"})).hex(), base) << "an unnamed key changed it";
  EXPECT_NE(train_fp(config({"index.kmeans_iterations=3"})).hex(), base);
  EXPECT_NE(train_fp(config({"index.factory=IVF32,Flat"})).hex(), base);
  EXPECT_NE(train_fp(config({"seed=9"})).hex(), base);
  Fingerprint other("add");
  other.keys(config(), {"index.factory", "index.kmeans_iterations", "seed"});
  EXPECT_NE(other.hex(), base) << "the stage name is part of it";
}

TEST_F(CheckpointTest, DownstreamFingerprintChangesWithUpstream) {
  Fingerprint a("add"), b("add");
  a.after(train_fp(config()));
  b.after(train_fp(config({"seed=77"})));
  EXPECT_NE(a.hex(), b.hex());
}

TEST_F(CheckpointTest, InputFilesChangeTheFingerprintWhenTheirSizeChanges) {
  write("in.bin", "12345");
  Fingerprint a("train");
  a.input_files({dir_.file("in.bin")});
  write("in.bin", "123456");
  Fingerprint b("train");
  b.input_files({dir_.file("in.bin")});
  EXPECT_NE(a.hex(), b.hex());
  Fingerprint missing("train");
  EXPECT_THROW(missing.input_files({dir_.file("nope.bin")}), std::runtime_error);
}

TEST_F(CheckpointTest, MarkerVerifiesUntilAnOutputChanges) {
  const Checkpoints cp(dir_.path());
  const Fingerprint fp = train_fp(config());
  EXPECT_EQ(cp.verify(fp), Checkpoints::kNoMarker);
  write("out/a.bin", "payload one");
  write("b.bin", "two");
  cp.mark_complete(fp, {"out/a.bin", "b.bin"}, {{"rows", 42}});
  EXPECT_EQ(cp.verify(fp), "");
  EXPECT_EQ(cp.info("train").value("rows", 0), 42);

  // Same size, one byte different: the checksum catches it.
  write("out/a.bin", "payload onE");
  EXPECT_NE(cp.verify(fp).find("out/a.bin: checksum differs"), std::string::npos) << cp.verify(fp);
  write("out/a.bin", "payload one");
  EXPECT_EQ(cp.verify(fp), "");
  // Truncated.
  write("b.bin", "tw");
  EXPECT_NE(cp.verify(fp).find("b.bin: 2 bytes, the marker says 3"), std::string::npos) << cp.verify(fp);
  write("b.bin", "two");
  // Gone.
  std::filesystem::remove(dir_.file("b.bin"));
  EXPECT_NE(cp.verify(fp).find("b.bin"), std::string::npos);
}

TEST_F(CheckpointTest, ChangedKeyIsNamedInTheReason) {
  const Checkpoints cp(dir_.path());
  write("x.bin", "x");
  cp.mark_complete(train_fp(config()), {"x.bin"});
  const std::string why = cp.verify(train_fp(config({"index.kmeans_iterations=3"})));
  EXPECT_NE(why.find("index.kmeans_iterations changed from '10' to '3'"), std::string::npos) << why;
}

TEST_F(CheckpointTest, UnknownFormatVersionOrGarbageDoesNotVerify) {
  const Checkpoints cp(dir_.path());
  const Fingerprint fp = train_fp(config());
  write("x.bin", "x");
  cp.mark_complete(fp, {"x.bin"});
  std::string text;
  {
    std::ifstream in(cp.marker_path("train"));
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  const size_t at = text.find("\"format_version\": 1");
  ASSERT_NE(at, std::string::npos) << text;
  io::publish_text(cp.marker_path("train"), text.replace(at, 19, "\"format_version\": 99"));
  EXPECT_NE(cp.verify(fp).find("format version 99"), std::string::npos) << cp.verify(fp);
  io::publish_text(cp.marker_path("train"), "{not json");
  EXPECT_EQ(cp.verify(fp), Checkpoints::kNoMarker);
}

TEST_F(CheckpointTest, MarkingAMissingOutputThrowsAndWritesNoMarker) {
  const Checkpoints cp(dir_.path());
  const Fingerprint fp = train_fp(config());
  EXPECT_THROW(cp.mark_complete(fp, {"never-written.bin"}), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(cp.marker_path("train")));
}

TEST_F(CheckpointTest, ForgetRemovesMarkersNotOutputs) {
  const Checkpoints cp(dir_.path());
  write("x.bin", "x");
  cp.mark_complete(Fingerprint("add/rows-1"), {"x.bin"});
  cp.mark_complete(Fingerprint("add/rows-2"), {"x.bin"});
  cp.mark_complete(Fingerprint("train"), {"x.bin"});
  cp.forget_all("add/");
  EXPECT_EQ(cp.verify(Fingerprint("add/rows-1")), Checkpoints::kNoMarker);
  EXPECT_EQ(cp.verify(Fingerprint("train")), "");
  cp.forget("train");
  EXPECT_EQ(cp.verify(Fingerprint("train")), Checkpoints::kNoMarker);
  EXPECT_TRUE(std::filesystem::exists(dir_.file("x.bin")));
}

TEST_F(CheckpointTest, StageCompleteNeedsResume) {
  auto comm = cluster::make_serial_comm();
  const Checkpoints cp(dir_.path());
  const Fingerprint fp = train_fp(config());
  write("x.bin", "x");
  cp.mark_complete(fp, {"x.bin"});
  EXPECT_FALSE(stage_complete(*comm, cp, fp, /*resume=*/false));
  EXPECT_TRUE(stage_complete(*comm, cp, fp, /*resume=*/true));
  write("x.bin", "y");
  EXPECT_FALSE(stage_complete(*comm, cp, fp, /*resume=*/true));
}

TEST(FileDigest, MatchesTheInMemoryChecksum) {
  testing::TempDir dir;
  std::string big(9 << 20, '\0');  // more than one 4 MiB read
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 2654435761u >> 13);
  io::publish_text(dir.file("big"), big);
  const io::FileDigest d = io::digest_file(dir.file("big"));
  EXPECT_EQ(d.bytes, static_cast<int64_t>(big.size()));
  EXPECT_EQ(d.xxh3, io::xxh3(big.data(), big.size()));
  EXPECT_EQ(io::hex64(0xabcULL), "0000000000000abc");
  EXPECT_THROW(io::digest_file(dir.file("missing")), std::runtime_error);
}

}  // namespace
}  // namespace sf::pipeline
