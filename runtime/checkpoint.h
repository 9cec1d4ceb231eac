// Checkpoints: completion markers that let a rerun with --resume skip the stages whose
// outputs are complete and were made from the same inputs and config.
//
// A stage writes each output under a temporary name and publishes it by atomic rename
// (io/atomic_file.h), then writes its marker <run dir>/checkpoints/<stage>.json (atomic too):
//   {"format_version": 1, "stage", "fingerprint": "<16 hex>", "parts": {name: value},
//    "outputs": [{"path" (relative to the run dir), "bytes", "xxh3"}], "info": {...}}
// A marker verifies when its format version and fingerprint match and every output has the
// recorded size and XXH3 checksum. The fingerprint hashes what the outputs depend on: the
// config keys the stage reads, the input files (path, size, mtime, ctime, inode; with
// input.verify: content also their XXH3), the fingerprints of the stages it builds on, and
// the rank count where the outputs depend on it. A changed key thus fails the marker of every
// stage that depends on it, directly or through another stage. Commands that read a published
// output (query, eval, search, info) check it against its marker first (verify_output).
//
// Typical use (pipeline/ and runtime/stage_runner.h do this for every stage):
//   Fingerprint fp("train"); fp.keys(config, {...}).input_files(paths);
//   if (!stage_complete(comm, checkpoints, fp, resume)) {
//     ... write and publish outputs ...;  checkpoints.mark_complete(fp, {"trained.faiss"});
//   }
// No MPI here except the collective stage_complete().
#pragma once

#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "cluster/comm.h"
#include "io/checksum.h"
#include "runtime/config.h"

namespace sf::runtime {

constexpr int kMarkerFormatVersion = 1;

// What a stage's outputs depend on. Parts are named; the order of calls does not matter.
class Fingerprint {
 public:
  explicit Fingerprint(std::string stage);
  const std::string& stage() const { return stage_; }

  // A config key's effective value (file + overrides + defaults), e.g. "index.factory".
  // REQUIRES: a schema key.
  Fingerprint& key(const Config& config, std::string_view dotted_key);
  Fingerprint& keys(const Config& config, std::initializer_list<std::string_view> dotted_keys);
  // Each file's path, size, mtime, ctime and inode (a changed file redoes the stage; `touch -r`
  // can restore the mtime, not the ctime). With `content` also the XXH3 of its bytes (reads
  // each file whole unless share_input_digests() gave its digest). Local stat(); throws
  // std::runtime_error naming a file that cannot be stat'ed or read.
  Fingerprint& input_files(const std::vector<std::string>& paths, bool content = false);
  // As above, with `content` from the config's input.verify.
  Fingerprint& input_files(const Config& config, const std::vector<std::string>& paths) {
    return input_files(paths, config.input.verify == "content");
  }
  // This stage builds on `upstream`: its fingerprint becomes a part.
  Fingerprint& after(const Fingerprint& upstream);
  // Anything else the outputs depend on (a row range, the rank count).
  Fingerprint& value(const std::string& name, const std::string& value);

  // The same parts under another stage name (a stage that depends on exactly the same, e.g.
  // a stopped k-means beside "train").
  Fingerprint for_stage(std::string stage) const {
    Fingerprint fp = *this;
    fp.stage_ = std::move(stage);
    return fp;
  }

  std::string hex() const;  // XXH3-64 of the canonical parts and the stage name
  const nlohmann::json& parts() const { return parts_; }

 private:
  std::string stage_;
  nlohmann::json parts_ = nlohmann::json::object();
};

// The markers of one run directory. Methods are local (any rank may call them); by
// convention the rank that publishes a stage's outputs writes its marker.
class Checkpoints {
 public:
  explicit Checkpoints(std::string run_dir);
  const std::string& run_dir() const { return dir_; }
  // <run dir>/<relative>.
  std::string path(const std::string& relative) const;
  std::string marker_path(const std::string& stage) const;

  static constexpr const char* kNoMarker = "no completion marker";
  // "" when the marker of fp.stage() verifies against fp and its outputs; otherwise why it
  // does not, for the log (kNoMarker, "index.factory changed", "index.faiss: 812 bytes,
  // marker says 9000", ...). Never throws.
  std::string verify(const Fingerprint& fp) const;
  // Records fp.stage() as complete with `outputs` (paths relative to the run dir, already
  // published) and `info` (anything a resumed run needs to report, e.g. counts). Reads each
  // output back to checksum what is on disk, unless `digests` has it (read back by the
  // caller). Throws std::runtime_error naming the file.
  void mark_complete(const Fingerprint& fp, const std::vector<std::string>& outputs,
                     const nlohmann::json& info = nlohmann::json::object(),
                     const std::map<std::string, io::FileDigest>& digests = {}) const;
  // "" when `relative`, a published output that a command reads (index.faiss, plan.json, a
  // shard, ids.jsonl), has the size and XXH3 that the marker of `stage` recorded for it;
  // otherwise why not, naming the file: "<run dir>/index.faiss: 812 bytes, its marker
  // (checkpoints/merge.json) says 9000: ...; rebuild". A marker that does not list the file
  // fails too. Without a marker (an output of a shardforge before markers, or a run directory
  // copied without checkpoints/) the file cannot be checked: logs a warning, returns "".
  // Reads the file whole (or takes its `digest`). Never throws.
  std::string verify_output(const std::string& stage, const std::string& relative) const;
  std::string verify_output(const std::string& stage, const std::string& relative,
                            const io::FileDigest& digest) const;
  // verify_output() or throw std::runtime_error with its reason.
  void require_output(const std::string& stage, const std::string& relative) const;
  // After `relative`, an output the marker of `stage` lists, was changed in place on purpose
  // (eval stores its recommended nprobe in index.faiss): records its new size and XXH3
  // (`digest`) in that marker, rewritten atomically; the fingerprint and the other outputs stay.
  // False (nothing to refresh) without a marker. Throws std::runtime_error naming the marker
  // when it is unreadable or does not list `relative`.
  bool refresh_output(const std::string& stage, const std::string& relative,
                      const io::FileDigest& digest) const;
  // The fingerprint (hex) the marker of `stage` recorded, when every output it lists still has
  // its recorded size and it lists `relative` with the XXH3 `xxh3_hex`: a cheap identity of
  // published outputs (sizes and one checksum; search names the layout by it). "" otherwise.
  // Never throws.
  std::string recorded_fingerprint(const std::string& stage, const std::string& relative,
                                   const std::string& xxh3_hex) const;
  // The `info` of a stage's marker; null when there is no readable marker.
  nlohmann::json info(const std::string& stage) const;
  // Removes the marker of `stage` (its outputs stay). No-op when there is none.
  void forget(const std::string& stage) const;
  // Removes every marker whose stage starts with `prefix` ("" = all of them), and the marker
  // folders left empty; other files under checkpoints/ stay.
  void forget_all(const std::string& prefix = "") const;

 private:
  std::string dir_;
};

// A whole file in memory (a checkpoint read back). Throws std::runtime_error naming the path.
cluster::Bytes read_bytes(const std::string& path);

// Collective. True on every rank when `resume` is set and the marker of fp.stage() verifies
// on rank 0 (which owns stages whose outputs are shared). Logs the decision on rank 0: the
// stage is skipped, or redone and why. Without `resume` returns false and logs nothing.
bool stage_complete(cluster::Comm& comm, const Checkpoints& checkpoints, const Fingerprint& fp,
                    bool resume);

// Collective. With input.verify: content, rank 0 reads every input file the config names
// (input.paths, embed.vectors, partition.workload/weights) once and broadcasts their XXH3, so
// that input_files() on every rank takes it instead of reading the files again; a rank whose
// stat of a file differs from rank 0's reads it itself. No-op with input.verify: metadata.
void share_input_digests(cluster::Comm& comm, const Config& config);

}  // namespace sf::runtime
