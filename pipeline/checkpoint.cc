#include "pipeline/checkpoint.h"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "io/atomic_file.h"
#include "io/checksum.h"

namespace sf::pipeline {
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

Fingerprint& Fingerprint::input_files(const std::vector<std::string>& paths) {
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& path : paths) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0)
      throw std::runtime_error(path + ": cannot stat: " + std::strerror(errno));
    const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    files.push_back({{"path", path}, {"bytes", static_cast<int64_t>(st.st_size)},
                     {"mtime_ns", mtime_ns}});
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
                                const nlohmann::json& info) const {
  nlohmann::json files = nlohmann::json::array();
  for (const std::string& rel : outputs) {
    const io::FileDigest d = io::digest_file(path(rel));
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

}  // namespace sf::pipeline
