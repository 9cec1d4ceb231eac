// `shardforge query RUN_DIR "text"`: see commands/run.h.
#include <faiss/Index.h>
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "io/index_file.h"
#include "io/text_corpus.h"
#include "pipeline/eval_recommend.h"
#include "pipeline/text_dedup.h"
#include "commands/run.h"
#include "runtime/checkpoint.h"
#include "runtime/config.h"
#include "stages/dedup/text.h"
#include "stages/embed/embedder.h"
#include "stages/ivf_index.h"

namespace sf::commands {

namespace {

std::string read_whole(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open (is it a `shardforge run` directory?)");
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// The first `chars` characters (UTF-8 aware) of `text`, with newlines and tabs as spaces.
std::string snippet(std::string_view text, int chars) {
  std::string out;
  int n = 0;
  for (size_t i = 0; i < text.size() && n < chars; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if ((c & 0xC0) != 0x80) ++n;
    if (n > chars) break;
    out.push_back(c == '\n' || c == '\t' || c == '\r' ? ' ' : static_cast<char>(c));
  }
  while (out.size() > 0 && (static_cast<unsigned char>(out.back()) & 0xC0) == 0x80 &&
         n > chars)
    out.pop_back();
  if (out.size() < text.size()) out += "...";
  return out;
}

}  // namespace

int query_job(const QueryOptions& options) {
  const std::string& dir = options.run_dir;
  // An empty query embeds to the zero vector: every hit would be at cosine 0.
  if (options.text.find_first_not_of(" \t\r\n\f\v") == std::string::npos)
    throw std::invalid_argument("the query text is empty: give the words to search for");
  const runtime::Config config = runtime::load_config(dir + "/config.yaml");
  // What the run published, checked against its markers before use: a damaged index or
  // ids.jsonl would give wrong neighbours with exit 0. XXH3 at disk speed: Fashion-MNIST's
  // 189 MB index.faiss in 0.06 s from the page cache, 0.15-0.2 s from disk.
  const runtime::Checkpoints checkpoints(dir);
  for (const char* file : {"embedder.json", "ids.jsonl"})
    if (std::filesystem::exists(checkpoints.path(file)))
      checkpoints.require_output("outputs", file);
  const auto state = nlohmann::json::parse(read_whole(dir + "/embedder.json"), nullptr, false);
  if (state.is_discarded()) throw std::runtime_error(dir + "/embedder.json: not JSON");
  std::unique_ptr<stages::embed::Embedder> embedder;
  try {
    embedder = stages::embed::restore_embedder(state);
  } catch (const std::invalid_argument& e) {
    throw std::runtime_error(dir + "/embedder.json: " + e.what());
  }
  if (!std::filesystem::exists(dir + "/index.faiss"))
    throw std::runtime_error(dir + "/index.faiss: missing (run.index was false, or the run failed)");
  checkpoints.require_output("merge", "index.faiss");
  std::unique_ptr<faiss::Index> index = io::read_index_file(dir + "/index.faiss");
  if (index->d != embedder->dim())
    throw std::runtime_error(dir + ": index.faiss has dimension " + std::to_string(index->d) +
                             " but embedder.json embeds into " +
                             std::to_string(embedder->dim()));

  // Embed the query as the run embedded its documents: normalised, embedded, L2-normalised.
  std::string normalised;
  stages::dedup::normalise_text(options.text, pipeline::dedup_normalise_options(config), normalised);
  stages::embed::DocBatch batch;
  batch.texts.emplace_back(normalised);
  batch.rows.push_back(0);
  batch.raw.emplace_back(options.text);
  std::vector<float> q(static_cast<size_t>(embedder->dim()));
  embedder->embed(batch, q.data());
  double norm = 0;
  for (float v : q) norm += static_cast<double>(v) * v;
  if (norm > 0)
    for (float& v : q) v = static_cast<float>(v / std::sqrt(norm));

  int nprobe = options.nprobe;
  if (nprobe <= 0) {
    const pipeline::DefaultNprobe chosen = pipeline::default_nprobe(dir);
    nprobe = chosen.nprobe;
    spdlog::info("query: nprobe {} (from {}; --nprobe sets another)", nprobe, chosen.source);
  }
  stages::set_nprobe(index.get(), nprobe);
  const int k = static_cast<int>(std::min<int64_t>(options.k, index->ntotal));
  std::vector<float> dist(static_cast<size_t>(k));
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(k));
  if (k > 0) index->search(1, q.data(), k, dist.data(), labels.data());

  // ids.jsonl: line k describes index id k.
  std::map<int64_t, nlohmann::json> wanted;
  for (faiss::Index::idx_t l : labels)
    if (l >= 0) wanted[l] = nullptr;
  {
    std::ifstream in(dir + "/ids.jsonl");
    if (!in) throw std::runtime_error(dir + "/ids.jsonl: cannot open");
    std::string line;
    int64_t n = 0;
    while (std::getline(in, line) && !wanted.empty() && n <= wanted.rbegin()->first) {
      if (auto it = wanted.find(n); it != wanted.end()) {
        it->second = nlohmann::json::parse(line, nullptr, false);
        if (it->second.is_discarded() || it->second.value("index_id", int64_t{-1}) != n)
          throw std::runtime_error(dir + "/ids.jsonl:" + std::to_string(n + 1) +
                                   ": not the entry of index id " + std::to_string(n));
      }
      ++n;
    }
  }
  // The neighbours' texts, read back from their input files (each file once).
  std::map<std::string, std::map<int64_t, std::string>> texts;  // file -> line -> text
  for (const auto& [id, entry] : wanted)
    if (entry.is_object()) texts[entry.at("file").get<std::string>()][entry.at("line").get<int64_t>()];
  const io::TextReadOptions read = pipeline::dedup_read_options(config, stages::dedup::KeepPolicy{});
  for (auto& [path, lines] : texts) {
    try {
      const auto files = io::stat_text_files({path});
      io::TextPiece piece;
      piece.file = 0;
      piece.begin = 0;
      piece.end = files[0].bytes;
      piece.whole = true;
      io::read_text_piece(
          files[0], piece, read,
          [&](const io::TextRecord& rec) {
            if (auto it = lines.find(rec.line + 1); it != lines.end())
              it->second = snippet(rec.text, options.snippet_chars);
          },
          [](const io::BadRecord&) {});
    } catch (const std::exception& e) {
      for (auto& [line, text] : lines) text = std::string("(unreadable: ") + e.what() + ")";
    }
  }

  // Inner product of unit vectors is the cosine; L2 reports the squared distance.
  const char* measure = config.index.metric == "ip" ? "cosine" : "distance";
  if (!options.json) std::printf("query: %s\n", snippet(options.text, options.snippet_chars).c_str());
  for (int i = 0; i < k; ++i) {
    if (labels[i] < 0) continue;
    const nlohmann::json& entry = wanted.at(labels[i]);
    if (!entry.is_object()) throw std::runtime_error(dir + "/ids.jsonl: no entry for index id " + std::to_string(labels[i]));
    const std::string file = entry.at("file").get<std::string>();
    const int64_t line = entry.at("line").get<int64_t>();
    if (options.json) {
      const nlohmann::json hit = {{"rank", i + 1},         {"score", dist[i]},
                                  {"index_id", labels[i]}, {"id", entry.at("id")},
                                  {"file", file},          {"line", line},
                                  {"text", texts[file][line]}};
      // Replace, not throw, on text that is not valid UTF-8 (a snippet cut by the reader).
      std::printf("%s\n", hit.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace).c_str());
      continue;
    }
    std::printf("%2d. %s %.4f  id %s  %s:%lld\n    %s\n", i + 1, measure, dist[i],
                entry.at("id").dump().c_str(), file.c_str(), static_cast<long long>(line),
                texts[file][line].c_str());
  }
  return 0;
}

}  // namespace sf::commands
