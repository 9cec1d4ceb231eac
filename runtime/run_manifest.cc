#include "runtime/run_manifest.h"

#include <fnmatch.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/atomic_file.h"
#include "io/checksum.h"
#include "runtime/run_dir.h"
#include "runtime/stop.h"

#ifndef SHARDFORGE_VERSION
#define SHARDFORGE_VERSION "0.0.0"
#endif

namespace sf::runtime {
namespace {

namespace fs = std::filesystem;

constexpr const char* kStateDir = ".shardforge";

std::string manifest_path(const std::string& dir) {
  return dir + "/" + kStateDir + "/manifest.json";
}

// "x.tmp.<digits>" -> "x" (what io::publish_file writes first); other names unchanged.
std::string published_name(const std::string& name) {
  const size_t at = name.rfind(".tmp.");
  if (at == std::string::npos || at + 5 >= name.size()) return name;
  if (!std::all_of(name.begin() + static_cast<std::ptrdiff_t>(at) + 5, name.end(), ::isdigit))
    return name;
  return name.substr(0, at);
}

// True for a run-dir-relative file that shardforge writes inside its folders.
bool shardforge_file_name(const std::string& rel) {
  const fs::path p(rel);
  const std::string top = p.begin()->string();
  const std::string name = published_name(p.filename().string());
  if (top == "checkpoints")
    return p.extension() == ".json" || fs::path(name).extension() == ".json";
  if (top == "embed" && name == "embedder.json") return true;
  // kept/'s shards and their pieces (io/text_shards.h): kept/00000.jsonl.zst,
  // kept.tmp/00000.00001.piece, run.tmp/kept/…
  const std::string folder = p.parent_path().filename().string();
  if ((folder == "kept" || folder == "kept.tmp") &&
      ::fnmatch("[0-9][0-9][0-9][0-9][0-9]*", name.c_str(), 0) == 0)
    return true;
  for (const char* pattern : {"part-[0-9][0-9][0-9][0-9][0-9]*", "rank-[0-9]*.sfar",
                              "rows-[0-9]*-[0-9]*.sfsh", "shard-[0-9]*.faiss",
                              "vectors-[0-9]*.npy"})
    if (::fnmatch(pattern, name.c_str(), 0) == 0) return true;
  return false;
}

std::string normal(const std::string& rel) {
  std::string r = fs::path(rel).lexically_normal().string();
  while (!r.empty() && r.back() == '/') r.pop_back();
  return r;
}

// `inner` is `outer` or inside it (both absolute, normalised).
bool is_within(const fs::path& inner, const fs::path& outer) {
  auto i = inner.begin();
  for (auto o = outer.begin(); o != outer.end(); ++o, ++i) {
    if (o->empty()) continue;  // a trailing separator
    if (i == inner.end() || *i != *o) return false;
  }
  return true;
}

fs::path resolved(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::weakly_canonical(fs::absolute(path), ec);
  return ec ? fs::absolute(path).lexically_normal() : p;
}

}  // namespace

RunDirRole run_dir_role(const std::string& command) {
  if (command == "build" || command == "dedup" || command == "run")
    return {RunDirRole::kProducer, command, ""};
  if (command == "eval") return {RunDirRole::kConsumer, "build", ""};
  if (command == "search") return {RunDirRole::kConsumer, "build", "run"};
  if (command == "dedup-quality") return {RunDirRole::kConsumer, "dedup", ""};
  return {RunDirRole::kReadOnly, "", ""};
}

RunManifest RunManifest::load(const std::string& dir) {
  RunManifest m;
  m.dir_ = dir;
  std::ifstream in(manifest_path(dir));
  if (!in) return m;
  const nlohmann::json j = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    throw ConfigError(manifest_path(dir) + ": not a shardforge manifest (not JSON)");
  if (j.value("format_version", 0) != kManifestFormatVersion)
    throw ConfigError(manifest_path(dir) + ": manifest format version " +
                      std::to_string(j.value("format_version", 0)) + ", this shardforge reads " +
                      std::to_string(kManifestFormatVersion) + ": choose another output.dir");
  m.exists_ = true;
  m.command_ = j.value("command", std::string());
  m.created_ = j.value("created", std::string());
  for (const auto& p : j.value("paths", nlohmann::json::array()))
    if (p.is_string()) m.paths_.insert(p.get<std::string>());
  return m;
}

bool RunManifest::owns(const std::string& rel_in) const {
  const std::string rel = normal(rel_in);
  if (paths_.count(rel) != 0) return true;
  for (fs::path up = fs::path(rel).parent_path(); !up.empty(); up = up.parent_path())
    if (paths_.count(up.string()) != 0) return shardforge_file_name(rel);
  return false;
}

std::string RunManifest::claim(const std::vector<std::string>& rels) {
  for (const std::string& rel : rels) {
    std::error_code ec;
    if (fs::symlink_status(dir_ + "/" + rel, ec).type() != fs::file_type::not_found && !owns(rel))
      return dir_ + "/" + rel + " exists and shardforge did not write it" +
             (exists_ ? "" : " (the directory has no " + manifest_path(dir_) + ")") +
             ": shardforge replaces only what it made. Move it away, or choose another "
             "output.dir";
  }
  for (const std::string& rel : rels) paths_.insert(normal(rel));
  return "";
}

void RunManifest::save() {
  std::error_code ec;
  fs::create_directories(dir_ + "/" + kStateDir, ec);
  if (ec) throw std::runtime_error(dir_ + "/" + kStateDir + ": cannot create: " + ec.message());
  if (created_.empty()) created_ = utc_now_text();
  const nlohmann::json j = {{"format_version", kManifestFormatVersion},
                            {"command", command_},
                            {"version", SHARDFORGE_VERSION},
                            {"created", created_},
                            {"updated", utc_now_text()},
                            {"paths", paths_}};
  io::publish_text(manifest_path(dir_), j.dump(1) + "\n");
  exists_ = true;
}

void RunManifest::remove(const std::string& rel_in) const {
  const std::string rel = normal(rel_in);
  const fs::path path = fs::path(dir_) / rel;
  // Leftovers of a publish that was killed: "<name>.tmp.<pid>" beside it.
  std::error_code ec;
  if (owns(rel) && fs::is_directory(path.parent_path(), ec)) {
    const std::string prefix = path.filename().string() + ".tmp.";
    std::vector<fs::path> leftovers;
    for (const auto& e : fs::directory_iterator(path.parent_path(), ec))
      if (e.path().filename().string().rfind(prefix, 0) == 0 &&
          published_name(e.path().filename().string()) == path.filename().string())
        leftovers.push_back(e.path());
    for (const fs::path& p : leftovers) fs::remove(p);
  }
  const fs::file_status st = fs::symlink_status(path, ec);
  if (st.type() == fs::file_type::not_found || !owns(rel)) return;
  if (st.type() != fs::file_type::directory || paths_.count(rel) == 0) {
    fs::remove(path);
    return;
  }
  // A claimed folder: its shardforge files, then the folders left empty (deepest first).
  std::vector<fs::path> files, folders{path};
  for (auto it = fs::recursive_directory_iterator(path); it != fs::recursive_directory_iterator();
       ++it) {
    if (it->is_directory() && !it->is_symlink())
      folders.push_back(it->path());
    else if (shardforge_file_name(it->path().lexically_relative(dir_).string()))
      files.push_back(it->path());
    else
      spdlog::warn("{}: not written by shardforge, left in place", it->path().string());
  }
  for (const fs::path& f : files) fs::remove(f);
  std::sort(folders.begin(), folders.end(),
            [](const fs::path& a, const fs::path& b) { return a.string() > b.string(); });
  for (const fs::path& f : folders)
    if (fs::is_empty(f)) fs::remove(f);
}

void remove_owned(const std::string& dir, const std::string& rel) {
  RunManifest::load(dir).remove(rel);
}

void claim_outputs(cluster::Comm& comm, const std::string& dir,
                   const std::vector<std::string>& rels) {
  std::string refusal;
  cluster::run_local_phase(comm, "claim outputs", [&] {
    if (comm.rank() != 0) return;
    std::vector<std::string> all = rels;
    for (const std::string& rel : rels)
      for (fs::path up = fs::path(rel).parent_path(); !up.empty(); up = up.parent_path())
        if (!fs::exists(fs::path(dir) / up)) all.push_back(up.string());
    RunManifest manifest = RunManifest::load(dir);
    refusal = manifest.claim(all);
    if (refusal.empty()) manifest.save();
  });
  agree_refusal(comm, refusal);
}

void agree_refusal(cluster::Comm& comm, const std::string& refusal) {
  cluster::Bytes message;
  if (comm.rank() == 0) message.assign(refusal.begin(), refusal.end());
  comm.broadcast(message, 0);
  if (!message.empty()) throw ConfigError(std::string(message.begin(), message.end()));
}

std::string input_inside(const Config& config, const std::string& command,
                         const std::vector<std::string>& replaced) {
  std::vector<std::pair<std::string, std::string>> inputs;  // key, path
  for (const std::string& p : config.input.paths) inputs.emplace_back("input.paths", p);
  const std::pair<const char*, const std::string*> keys[] = {
      {"eval.queries", &config.eval.queries},
      {"eval.ground_truth", &config.eval.ground_truth},
      {"search.queries", &config.search.queries},
      {"partition.workload", &config.partition.workload},
      {"partition.weights", &config.partition.weights},
      {"embed.vectors", &config.embed.vectors}};
  for (const auto& [key, path] : keys)
    if (!path->empty()) inputs.emplace_back(key, *path);
  const fs::path dir = resolved(config.output.dir);
  for (const auto& [key, path] : inputs) {
    const fs::path input = resolved(path);
    for (const std::string& rel : replaced)
      if (is_within(input, (dir / rel).lexically_normal()))
        return config.source + ": " + key + ": " + path + " lies inside " + (dir / rel).string() +
               ", which `" + command +
               "` replaces or cleans before reading its inputs: copy the input out of "
               "output.dir (" +
               config.output.dir + "), or choose another output.dir";
  }
  return "";
}

void agree_input_files(cluster::Comm& comm, const Config& config) {
  std::string list;
  for (const std::string& path : config.input.paths) list += path + '\n';
  const uint64_t mine = io::xxh3(list.data(), list.size());
  cluster::Bytes message(sizeof(mine));
  std::memcpy(message.data(), &mine, sizeof(mine));
  comm.broadcast(message, 0);
  uint64_t root = 0;
  std::memcpy(&root, message.data(), sizeof(root));
  const int64_t differing = comm.sum(int64_t{mine != root});
  if (differing > 0)
    throw ConfigError(config.source + ": input.paths: " + std::to_string(differing) +
                      " rank(s) found other files than rank 0 (" +
                      std::to_string(config.input.paths.size()) +
                      " on this rank): every rank must see the same directories");
}

RunDirLease open_run_dir(cluster::Comm& comm, const Config& config, const std::string& command) {
  agree_input_files(comm, config);
  const RunDirRole role = run_dir_role(command);
  if (role.kind == RunDirRole::kReadOnly) return {};
  const std::string& dir = config.output.dir;
  std::unique_ptr<RunLock> lock;
  std::string refusal;
  cluster::run_local_phase(comm, "open output.dir", [&] {
    if (comm.rank() != 0) return;
    std::error_code ec;
    if (role.kind == RunDirRole::kConsumer && !fs::is_directory(dir, ec)) {
      const std::string needed = role.producer == "dedup" ? "duplicates.jsonl" : "index.faiss";
      refusal = "output.dir " + dir + " does not exist, so there is no " + dir + "/" + needed +
                ": `" + command + "` works in the run directory of a `" + role.producer +
                "`; run that first";
      return;
    }
    make_run_dir(dir);
    fs::create_directories(dir + "/" + kStateDir, ec);
    if (ec) throw std::runtime_error(dir + "/" + kStateDir + ": cannot create: " + ec.message());
    try {
      lock = std::make_unique<RunLock>(dir, command, comm.size());
      RunManifest manifest = RunManifest::load(dir);
      const std::string& made_by = manifest.command();
      if (!made_by.empty() && made_by != role.producer &&
          (role.also.empty() || made_by != role.also)) {
        refusal = "output.dir " + dir + " is the run directory of a `shardforge " + made_by +
                  "`; `" + command + "` " +
                  (role.kind == RunDirRole::kProducer
                       ? "does not write into another command's run directory"
                       : "works in the run directory of a `" + role.producer + "`") +
                  ": choose another output.dir";
        lock.reset();
        return;
      }
      if (role.kind == RunDirRole::kProducer) manifest.set_command(command);
      refusal = manifest.claim({"status.json", "run.json"});
      if (!refusal.empty()) {
        lock.reset();
        return;
      }
      manifest.save();
    } catch (const RunDirBusy& e) {
      refusal = e.what();
    } catch (const ConfigError& e) {
      refusal = e.what();
      lock.reset();
    }
  });
  agree_refusal(comm, refusal);
  return RunDirLease(std::move(lock));
}

TemporaryFolders::~TemporaryFolders() {
  if (!active_) return;
  try {
    const RunManifest manifest = RunManifest::load(dir_);
    for (const std::string& rel : rels_) manifest.remove(rel);
  } catch (const std::exception& e) {
    spdlog::warn("{}: temporary folders not removed: {}", dir_, e.what());
  }
}

}  // namespace sf::runtime
