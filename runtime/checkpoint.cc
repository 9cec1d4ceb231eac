#include "runtime/checkpoint.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>
#include <stdexcept>

#include "io/atomic_file.h"
#include "io/checksum.h"

namespace sf::runtime {
namespace {

namespace fs = std::filesystem;

// A YAML value on one line (flow style), as the fingerprint records it.
std::string flow_text(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetMapFormat(YAML::Flow);
  out.SetSeqFormat(YAML::Flow);
  out << node;
  return out.c_str();
}

std::string short_text(const nlohmann::json& value) {
  std::string text = value.is_string() ? value.get<std::string>() : value.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return "'" + text + "'";
}

// Which parts differ between a marker's and the current fingerprint, for the log.
std::string describe_changes(const nlohmann::json& recorded, const nlohmann::json& current) {
  std::string out;
  auto add = [&](const std::string& text) { out += (out.empty() ? "" : "; ") + text; };
  for (const auto& [name, value] : current.items()) {
    if (!recorded.contains(name))
      add(name + " is new");
    else if (recorded[name] != value)
      add(name + " changed from " + short_text(recorded[name]) + " to " + short_text(value));
  }
  for (const auto& [name, value] : recorded.items())
    if (!current.contains(name)) add(name + " is gone");
  return out.empty() ? "fingerprint differs" : out;
}

nlohmann::json read_marker(const std::string& path) {
  std::ifstream in(path);
  if (!in) return nullptr;
  nlohmann::json marker = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (marker.is_discarded() || !marker.is_object()) return nullptr;
  return marker;
}

// What stat() says of an input file: what the fingerprint records. Not st_dev: on NFS and
// Lustre it is a number each client picks, so a requeued Slurm job on other nodes would see
// every input as changed and redo every stage. ctime and inode are what `touch -r` (or an
// editor that restores the mtime) cannot set back.
struct FileIdentity {
  int64_t bytes = 0, mtime_ns = 0, ctime_ns = 0;
  uint64_t inode = 0;
  bool operator==(const FileIdentity& o) const {
    return bytes == o.bytes && mtime_ns == o.mtime_ns && ctime_ns == o.ctime_ns && inode == o.inode;
  }
  nlohmann::json to_json(const std::string& path) const {
    return {{"path", path},
            {"bytes", bytes},
            {"mtime_ns", mtime_ns},
            {"ctime_ns", ctime_ns},
            {"inode", inode}};
  }
};

// Throws std::runtime_error naming the path.
FileIdentity stat_identity(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0)
    throw std::runtime_error(path + ": cannot stat: " + std::strerror(errno));
  FileIdentity id;
  id.bytes = static_cast<int64_t>(st.st_size);
  id.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
  id.ctime_ns = int64_t{st.st_ctim.tv_sec} * 1000000000 + st.st_ctim.tv_nsec;
  id.inode = static_cast<uint64_t>(st.st_ino);
  return id;
}

// The XXH3 of input files this process knows (read here, or broadcast by rank 0), by path:
// a file is read once per process however many fingerprints name it (dedup's sketch and each
// rank's own sketch marker), and on one rank only (share_input_digests). Thread-safe.
struct KnownDigest {
  FileIdentity identity;
  uint64_t xxh3 = 0;
};
std::mutex known_digests_mutex;
std::map<std::string, KnownDigest>& known_digests() {
  static std::map<std::string, KnownDigest> known;
  return known;
}

// The XXH3 of `path`, whose stat() gave `identity`; read unless known with that identity.
uint64_t content_xxh3(const std::string& path, const FileIdentity& identity) {
  {
    std::lock_guard<std::mutex> lock(known_digests_mutex);
    const auto it = known_digests().find(path);
    if (it != known_digests().end() && it->second.identity == identity) return it->second.xxh3;
  }
  const uint64_t xxh3 = io::digest_file(path).xxh3;
  std::lock_guard<std::mutex> lock(known_digests_mutex);
  known_digests()[path] = {identity, xxh3};
  return xxh3;
}

}  // namespace

Fingerprint::Fingerprint(std::string stage) : stage_(std::move(stage)) {}

Fingerprint& Fingerprint::key(const Config& config, std::string_view dotted_key) {
  YAML::Node node = YAML::Clone(config.resolved);
  const std::string key(dotted_key);
  size_t begin = 0;
  while (true) {
    const size_t dot = key.find('.', begin);
    const std::string part = key.substr(begin, dot == std::string::npos ? dot : dot - begin);
    const YAML::Node& parent = node;
    YAML::Node child = parent[part];
    if (!child.IsDefined()) throw std::logic_error("fingerprint: no config key " + key);
    node.reset(child);
    if (dot == std::string::npos) break;
    begin = dot + 1;
  }
  parts_[key] = flow_text(node);
  return *this;
}

Fingerprint& Fingerprint::keys(const Config& config,
                               std::initializer_list<std::string_view> dotted_keys) {
  for (std::string_view k : dotted_keys) key(config, k);
  return *this;
}

Fingerprint& Fingerprint::input_files(const std::vector<std::string>& paths, bool content) {
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& path : paths) {
    const FileIdentity identity = stat_identity(path);
    nlohmann::json file = identity.to_json(path);
    // A second read of the file, at disk speed: 944 MB took 0.31 s from the page cache and 3.3 s
    // from this VM's disk; the Fashion-MNIST corpus file (26 MB) 0.02 s. Done here rather than
    // while a stage reads its rows: a resumed stage reads nothing else, and readers are per format.
    if (content) file["xxh3"] = io::hex64(content_xxh3(path, identity));
    files.push_back(std::move(file));
  }
  parts_["input files"] = files;
  return *this;
}

Fingerprint& Fingerprint::after(const Fingerprint& upstream) {
  parts_["stage " + upstream.stage()] = upstream.hex();
  return *this;
}

Fingerprint& Fingerprint::value(const std::string& name, const std::string& value) {
  parts_[name] = value;
  return *this;
}

std::string Fingerprint::hex() const {
  // nlohmann::json objects keep their keys sorted: the text is canonical.
  const std::string text = "shardforge " SHARDFORGE_VERSION "\n" + stage_ + "\n" + parts_.dump();
  return io::hex64(io::xxh3(text.data(), text.size()));
}

Checkpoints::Checkpoints(std::string run_dir) : dir_(std::move(run_dir)) {}

std::string Checkpoints::path(const std::string& relative) const { return dir_ + "/" + relative; }

std::string Checkpoints::marker_path(const std::string& stage) const {
  return dir_ + "/checkpoints/" + stage + ".json";
}

std::string Checkpoints::verify(const Fingerprint& fp) const {
  try {
    const nlohmann::json marker = read_marker(marker_path(fp.stage()));
    if (marker.is_null()) return kNoMarker;
    if (marker.value("format_version", 0) != kMarkerFormatVersion)
      return "marker format version " + std::to_string(marker.value("format_version", 0)) +
             ", this shardforge writes " + std::to_string(kMarkerFormatVersion);
    if (marker.value("fingerprint", "") != fp.hex())
      return describe_changes(marker.value("parts", nlohmann::json::object()), fp.parts());
    for (const auto& out : marker.at("outputs")) {
      const std::string rel = out.at("path").get<std::string>();
      const std::string file = path(rel);
      std::error_code ec;
      const auto size = fs::file_size(file, ec);
      if (ec) return rel + ": " + ec.message();
      const int64_t want = out.at("bytes").get<int64_t>();
      if (static_cast<int64_t>(size) != want)
        return rel + ": " + std::to_string(size) + " bytes, the marker says " + std::to_string(want);
      if (io::hex64(io::digest_file(file).xxh3) != out.at("xxh3").get<std::string>())
        return rel + ": checksum differs from the marker's";
    }
    return "";
  } catch (const std::exception& e) {
    return std::string("unreadable marker: ") + e.what();
  }
}

void Checkpoints::mark_complete(const Fingerprint& fp, const std::vector<std::string>& outputs,
                                const nlohmann::json& info,
                                const std::map<std::string, io::FileDigest>& digests) const {
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& rel : outputs) {
    const auto known = digests.find(rel);
    const io::FileDigest d = known != digests.end() ? known->second : io::digest_file(path(rel));
    files.push_back({{"path", rel}, {"bytes", d.bytes}, {"xxh3", io::hex64(d.xxh3)}});
  }
  const nlohmann::json marker = {{"format_version", kMarkerFormatVersion},
                                 {"stage", fp.stage()},
                                 {"fingerprint", fp.hex()},
                                 {"parts", fp.parts()},
                                 {"outputs", files},
                                 {"info", info}};
  const std::string file = marker_path(fp.stage());
  std::error_code ec;
  fs::create_directories(fs::path(file).parent_path(), ec);
  if (ec) throw std::runtime_error(file + ": cannot create its directory: " + ec.message());
  io::publish_text(file, marker.dump(1) + "\n");
}

std::string Checkpoints::verify_output(const std::string& stage,
                                       const std::string& relative) const {
  const std::string file = path(relative);
  std::error_code ec;
  if (!fs::exists(file, ec)) return file + ": " + std::strerror(ENOENT);
  try {
    // Without a marker there is nothing to compare with: no need to read the file.
    if (read_marker(marker_path(stage)).is_null()) return verify_output(stage, relative, {});
    return verify_output(stage, relative, io::digest_file(file));
  } catch (const std::exception& e) {
    return e.what();
  }
}

std::string Checkpoints::verify_output(const std::string& stage, const std::string& relative,
                                       const io::FileDigest& digest) const {
  const std::string file = path(relative);
  const std::string marker_name = "checkpoints/" + stage + ".json";
  try {
    const nlohmann::json marker = read_marker(marker_path(stage));
    if (marker.is_null()) {
      // Not an error: outputs of a shardforge before completion markers stay usable.
      spdlog::warn(
          "{}: not verified: no completion marker {} records its size and checksum (an "
          "output of an older shardforge, or copied without checkpoints/); used as it is",
          file, marker_name);
      return "";
    }
    for (const auto& out : marker.value("outputs", nlohmann::json::array())) {
      if (out.value("path", "") != relative) continue;
      const int64_t want = out.at("bytes").get<int64_t>();
      if (digest.bytes != want)
        return file + ": " + std::to_string(digest.bytes) + " bytes, its marker (" + marker_name +
               ") says " + std::to_string(want) +
               ": the file changed after the stage wrote it; rebuild";
      if (io::hex64(digest.xxh3) != out.at("xxh3").get<std::string>())
        return file + ": checksum mismatch with its marker (" + marker_name +
               "): the file changed after the stage wrote it; rebuild";
      return "";
    }
    return file + ": its stage's marker " + marker_name +
           " does not list it: it was not written by that stage; rebuild";
  } catch (const std::exception& e) {
    return file + ": unreadable marker " + marker_name + ": " + e.what();
  }
}

void Checkpoints::require_output(const std::string& stage, const std::string& relative) const {
  const std::string why = verify_output(stage, relative);
  if (!why.empty()) throw std::runtime_error(why);
}

bool Checkpoints::refresh_output(const std::string& stage, const std::string& relative,
                                 const io::FileDigest& digest) const {
  const std::string file = marker_path(stage);
  if (!fs::exists(file)) return false;
  nlohmann::json marker = read_marker(file);
  if (!marker.is_object() || !marker.contains("outputs") || !marker["outputs"].is_array())
    throw std::runtime_error(file + ": unreadable marker: cannot record the new " + relative);
  for (auto& out : marker["outputs"]) {
    if (!out.is_object() || out.value("path", "") != relative) continue;
    out["bytes"] = digest.bytes;
    out["xxh3"] = io::hex64(digest.xxh3);
    io::publish_text(file, marker.dump(1) + "\n");
    return true;
  }
  throw std::runtime_error(file + ": does not list " + relative + ": cannot record its new digest");
}

std::string Checkpoints::recorded_fingerprint(const std::string& stage,
                                              const std::string& relative,
                                              const std::string& xxh3_hex) const {
  const nlohmann::json marker = read_marker(marker_path(stage));
  if (!marker.is_object() || !marker.contains("outputs") || !marker["outputs"].is_array())
    return "";
  bool listed = false;
  for (const auto& out : marker["outputs"]) {
    if (!out.is_object()) return "";
    const std::string rel = out.value("path", "");
    std::error_code ec;
    const auto bytes = fs::file_size(path(rel), ec);
    if (ec || static_cast<int64_t>(bytes) != out.value("bytes", int64_t{-1})) return "";
    if (rel == relative && out.value("xxh3", "") == xxh3_hex) listed = true;
  }
  return listed ? marker.value("fingerprint", "") : "";
}

nlohmann::json Checkpoints::info(const std::string& stage) const {
  const nlohmann::json marker = read_marker(marker_path(stage));
  if (marker.is_null() || !marker.contains("info")) return nullptr;
  return marker["info"];
}

void Checkpoints::forget(const std::string& stage) const {
  std::error_code ec;
  fs::remove(marker_path(stage), ec);
}

void Checkpoints::forget_all(const std::string& prefix) const {
  // Markers only (*.json), then the folders left empty: anything else a user put under
  // checkpoints/ stays. A prefix ending in '/' is a folder of markers (e.g. "add/").
  const fs::path root = dir_ + "/checkpoints";
  const bool folder = !prefix.empty() && prefix.back() == '/';
  const fs::path top = folder ? root / prefix.substr(0, prefix.size() - 1) : root;
  std::error_code ec;
  std::vector<fs::path> doomed, folders;
  for (fs::recursive_directory_iterator it(top, ec), end; !ec && it != end; it.increment(ec)) {
    if (it->is_directory()) {
      folders.push_back(it->path());
      continue;
    }
    const std::string rel = it->path().lexically_relative(root).string();
    if (it->is_regular_file() && it->path().extension() == ".json" &&
        (folder || rel.rfind(prefix, 0) == 0))
      doomed.push_back(it->path());
  }
  for (const fs::path& p : doomed) fs::remove(p, ec);
  if (!folder && !prefix.empty()) return;
  folders.push_back(top);
  std::sort(folders.begin(), folders.end(),
            [](const fs::path& a, const fs::path& b) { return a.string() > b.string(); });
  for (const fs::path& f : folders)
    if (fs::is_empty(f, ec) && !ec) fs::remove(f, ec);
}

cluster::Bytes read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  cluster::Bytes bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) throw std::runtime_error(path + ": read failed");
  return bytes;
}

bool stage_complete(cluster::Comm& comm, const Checkpoints& checkpoints, const Fingerprint& fp,
                    bool resume) {
  if (!resume) return false;
  std::string why;
  cluster::run_local_phase(comm, fp.stage() + ": check marker", [&] {
    if (comm.rank() == 0) why = checkpoints.verify(fp);
  });
  cluster::Bytes message(why.begin(), why.end());
  comm.broadcast(message, 0);
  const bool complete = message.empty();
  if (comm.rank() == 0) {
    if (complete)
      spdlog::info("{}: complete (marker verified), skipped", fp.stage());
    else
      spdlog::info("{}: redo: {}", fp.stage(), why);
  }
  return complete;
}

void share_input_digests(cluster::Comm& comm, const Config& config) {
  if (config.input.verify != "content") return;
  std::vector<std::string> paths = config.input.paths;
  for (const std::string* p :
       {&config.embed.vectors, &config.partition.workload, &config.partition.weights})
    if (!p->empty()) paths.push_back(*p);
  nlohmann::json known = nlohmann::json::array();
  cluster::run_local_phase(comm, "input.verify: checksum the inputs", [&] {
    if (comm.rank() != 0) return;
    const auto t0 = std::chrono::steady_clock::now();
    int64_t bytes = 0;
    for (const std::string& path : paths) {
      struct stat st;
      // A missing file or a FIFO: the stage's own stat or reader names it.
      if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
      const FileIdentity identity = stat_identity(path);
      nlohmann::json entry = identity.to_json(path);
      entry["xxh3"] = content_xxh3(path, identity);
      known.push_back(std::move(entry));
      bytes += identity.bytes;
    }
    const double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    spdlog::info("input.verify: content: checksummed {} input file(s), {:.1f} MB in {:.2f} s",
                 known.size(), static_cast<double>(bytes) / 1e6, seconds);
  });
  const std::string text = known.dump();
  cluster::Bytes message(text.begin(), text.end());
  comm.broadcast(message, 0);
  if (comm.rank() == 0) return;
  const nlohmann::json received = nlohmann::json::parse(message.begin(), message.end());
  std::lock_guard<std::mutex> lock(known_digests_mutex);
  for (const auto& entry : received) {
    KnownDigest d;
    d.identity.bytes = entry.at("bytes").get<int64_t>();
    d.identity.mtime_ns = entry.at("mtime_ns").get<int64_t>();
    d.identity.ctime_ns = entry.at("ctime_ns").get<int64_t>();
    d.identity.inode = entry.at("inode").get<uint64_t>();
    d.xxh3 = entry.at("xxh3").get<uint64_t>();
    known_digests()[entry.at("path").get<std::string>()] = d;
  }
}

}  // namespace sf::runtime
