// runtime/checkpoint.h: fingerprints follow the keys a stage depends on, and a completion
// marker verifies only while its outputs are byte for byte what it recorded.
#include "runtime/checkpoint.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "runtime/config.h"
#include "tests/test_util.h"

namespace sf::runtime {
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

// Rewrites `path` in place (same inode, same size) and sets its mtime back, as an editor that
// keeps timestamps or `touch -r original` would. The pause lets the coarse kernel clock that
// stamps ctime move on.
void edit_in_place_keeping_mtime(const std::string& path, const std::string& text) {
  struct stat before;
  ASSERT_EQ(::stat(path.c_str(), &before), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  std::ofstream(path, std::ios::binary | std::ios::in | std::ios::out) << text;
  const struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(::utimensat(AT_FDCWD, path.c_str(), times, 0), 0);
  struct stat after;
  ASSERT_EQ(::stat(path.c_str(), &after), 0);
  ASSERT_EQ(after.st_size, before.st_size);
  ASSERT_EQ(after.st_ino, before.st_ino);
  ASSERT_EQ(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
  ASSERT_EQ(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
}

// Regression (issue 12): path + size + mtime let an edit that kept the size and restored the
// mtime resume from stale sketches and embeddings.
TEST_F(CheckpointTest, InputEditKeepingSizeAndMtimeChangesTheFingerprint) {
  write("in.txt", "alpha beta");
  Fingerprint a("sketch");
  a.input_files({dir_.file("in.txt")});
  edit_in_place_keeping_mtime(dir_.file("in.txt"), "alpha BETA");
  Fingerprint b("sketch");
  b.input_files({dir_.file("in.txt")});
  EXPECT_NE(a.hex(), b.hex()) << a.parts().dump() << "\n" << b.parts().dump();
  const auto& before = a.parts()["input files"][0];
  const auto& after = b.parts()["input files"][0];
  EXPECT_EQ(before["mtime_ns"], after["mtime_ns"]);
  EXPECT_NE(before["ctime_ns"], after["ctime_ns"]);
  EXPECT_EQ(before["inode"], after["inode"]);
  EXPECT_FALSE(before.contains("dev")) << "st_dev differs between NFS clients: not recorded";
  // An unchanged file gives the same fingerprint.
  Fingerprint c("sketch");
  c.input_files({dir_.file("in.txt")});
  EXPECT_EQ(b.hex(), c.hex());
}

TEST_F(CheckpointTest, ContentModeRecordsEachInputsChecksum) {
  write("in.txt", "alpha beta");
  Fingerprint meta("sketch"), content("sketch");
  meta.input_files({dir_.file("in.txt")});
  content.input_files(config({"input.verify=content"}), {dir_.file("in.txt")});
  EXPECT_FALSE(meta.parts()["input files"][0].contains("xxh3"));
  EXPECT_EQ(content.parts()["input files"][0].value("xxh3", ""),
            io::hex64(io::xxh3("alpha beta", 10)));
  EXPECT_NE(meta.hex(), content.hex());
  // The checksum follows the bytes, not a digest remembered for the path.
  edit_in_place_keeping_mtime(dir_.file("in.txt"), "alpha BETA");
  Fingerprint edited("sketch");
  edited.input_files({dir_.file("in.txt")}, /*content=*/true);
  EXPECT_EQ(edited.parts()["input files"][0].value("xxh3", ""),
            io::hex64(io::xxh3("alpha BETA", 10)));
  EXPECT_EQ(config().input.verify, "metadata");
  EXPECT_THROW(config({"input.verify=contents"}), ConfigError);
}

TEST_F(CheckpointTest, ShareInputDigestsGivesTheSameFingerprint) {
  auto comm = cluster::make_serial_comm();
  write("a.fvecs", "vectors");
  const Config c = config({"input.verify=content", "input.paths=[" + dir_.file("a.fvecs") + "]"});
  share_input_digests(*comm, c);
  Fingerprint fp("train");
  fp.input_files(c, c.input.paths);
  EXPECT_EQ(fp.parts()["input files"][0].value("xxh3", ""), io::hex64(io::xxh3("vectors", 7)));
}

// Regression (issue 12): query, eval, search and info used a damaged index.faiss.
TEST_F(CheckpointTest, PublishedOutputIsCheckedAgainstItsMarker) {
  const Checkpoints cp(dir_.path());
  const std::string index = dir_.file("index.faiss");
  const std::string missing = cp.verify_output("merge", "index.faiss");
  EXPECT_NE(missing.find(index + ": No such file"), std::string::npos) << missing;
  write("index.faiss", "0123456789");
  // No marker (an older shardforge): cannot be checked, a warning, usable.
  EXPECT_EQ(cp.verify_output("merge", "index.faiss"), "");
  write("other.bin", "x");
  cp.mark_complete(Fingerprint("merge"), {"index.faiss"});
  EXPECT_EQ(cp.verify_output("merge", "index.faiss"), "");
  EXPECT_NO_THROW(cp.require_output("merge", "index.faiss"));
  EXPECT_NE(cp.verify_output("merge", "other.bin").find("does not list it"), std::string::npos);

  write("index.faiss", "01234X6789");  // one byte, same size
  const std::string flipped = cp.verify_output("merge", "index.faiss");
  EXPECT_NE(flipped.find(index + ": checksum mismatch with its marker (checkpoints/merge.json)"),
            std::string::npos)
      << flipped;
  EXPECT_THROW(cp.require_output("merge", "index.faiss"), std::runtime_error);
  write("index.faiss", "01234");
  const std::string truncated = cp.verify_output("merge", "index.faiss");
  EXPECT_NE(truncated.find(index + ": 5 bytes, its marker (checkpoints/merge.json) says 10"),
            std::string::npos)
      << truncated;
  EXPECT_EQ(
      cp.verify_output("merge", "index.faiss", io::FileDigest{10, io::xxh3("0123456789", 10)}), "");
}

// eval patches index.faiss's nprobe in place: the merge marker follows, so readers verify it.
TEST_F(CheckpointTest, RefreshOutputRecordsAChangedFile) {
  const Checkpoints cp(dir_.path());
  write("index.faiss", "0123456789");
  EXPECT_FALSE(cp.refresh_output("merge", "index.faiss", io::digest_file(dir_.file("index.faiss"))))
      << "no marker: nothing to refresh";
  write("plan.json", "{}");
  Fingerprint fp("merge");
  fp.value("x", "1");
  cp.mark_complete(fp, {"index.faiss", "plan.json"}, {{"n", 3}});
  write("index.faiss", "01234X67890");
  EXPECT_NE(cp.verify_output("merge", "index.faiss"), "");
  EXPECT_TRUE(cp.refresh_output("merge", "index.faiss", io::digest_file(dir_.file("index.faiss"))));
  EXPECT_EQ(cp.verify_output("merge", "index.faiss"), "");
  EXPECT_EQ(cp.verify(fp), "") << "fingerprint and the other outputs kept";
  EXPECT_EQ(cp.info("merge").value("n", 0), 3);
  EXPECT_THROW(cp.refresh_output("merge", "other.bin", io::FileDigest{1, 2}), std::runtime_error);
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
}  // namespace sf::runtime
