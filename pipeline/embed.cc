// The embed stage of `run` (pipeline/text_index.h): one pass over the texts, then the survivors'
// vectors to block-aligned ranges, checkpointed per rank.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>

#include "io/array_file.h"
#include "io/atomic_file.h"
#include "runtime/memory_budget.h"
#include "runtime/run_dir.h"
#include "stages/batches.h"
#include "pipeline/text_index.h"

namespace sf::pipeline {

namespace em = stages::embed;

em::EmbedOptions run_embed_options(const runtime::Config& config) {
  em::EmbedOptions o;
  o.method = config.embed.method;
  o.dim = config.embed.dim;
  o.seed = static_cast<uint64_t>(config.embed.seed);
  o.vectors = config.embed.vectors;
  o.vectors_dataset = config.embed.vectors_dataset;
  o.vectors_field = config.embed.vectors_field;
  return o;
}

namespace {

void l2_normalise(float* v, int dim) {
  double s = 0;
  for (int j = 0; j < dim; ++j) s += static_cast<double>(v[j]) * v[j];
  if (s <= 0) return;
  const auto inv = static_cast<float>(1.0 / std::sqrt(s));
  for (int j = 0; j < dim; ++j) v[j] *= inv;
}

}  // namespace

uint64_t embed_need_bytes(uint64_t text_bytes, int64_t embedded, int dim, bool raw) {
  // The texts as read and as normalised (and the raw records), the embeddings and their copy
  // while they move to block-aligned ranges.
  return (raw ? 3 : 2) * text_bytes +
         2 * static_cast<uint64_t>(std::max<int64_t>(0, embedded)) * std::max(0, dim) * 4;
}

// The keys of run_embed_options, embed.vectors' file and the rank count (the vectors are
// stored in the block-aligned ranges of this rank count).
void EmbedStage::configure(runtime::StageOptions& options) {
  const runtime::EmbedConfig& e = options.config().embed;
  method_ = options.read("embed.method", e.method);
  options.read("embed.dim", e.dim);
  options.read("embed.seed", e.seed);
  const std::string& vectors = options.read("embed.vectors", e.vectors);
  options.read("embed.vectors_dataset", e.vectors_dataset);
  raw_ = !options.read("embed.vectors_field", e.vectors_field).empty();
  options.value("ranks", std::to_string(ranks_));
  if (!vectors.empty()) options.input_files({vectors});
  batch_ = static_cast<int64_t>(e.batch);
}

void EmbedStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  // One pass over the texts (Embedder::fit_embed): fit on every document (idf over the
  // corpus) and embed the dedup survivors.
  stages::dedup::LocalCorpus& corpus = deduped_.corpus;
  const cluster::RowRange range = deduped_.range;
  const auto local_docs = static_cast<int64_t>(corpus.keep_score.size());
  // Before any work: what the stage holds on the rank that holds most against the budget.
  const auto need = static_cast<uint64_t>(comm.max(static_cast<double>(embed_need_bytes(
      deduped_.local_bytes_in, local_docs - static_cast<int64_t>(deduped_.verdicts.size()),
      embedder_.dim(), raw_))));
  if (context.budget.bytes > 0 && need > context.budget.bytes)
    throw runtime::ConfigError(
        context.config.source + ": " +
        runtime::over_budget_message(
            "embed: a rank's texts (its share of the input, read again and normalised) and "
            "their embeddings (embed.dim " + std::to_string(embedder_.dim()) + ")",
            need, context.budget, "; run on more ranks or raise resources.memory_per_rank"));
  // The rank's texts, read again: read+sketch keeps none, so that the dedup stages do not
  // hold them (the same texts: read_texts normalises as read+sketch does).
  const auto t_read = std::chrono::steady_clock::now();
  cluster::run_local_phase(comm, "embed: read texts", [&] {
    if (!corpus.texts.empty() || local_docs == 0) return;
    stages::dedup::KeptTexts keep;
    keep.normalised = true;
    keep.raw = raw_;
    stages::dedup::read_texts(deduped_.setup.read, dedup_normalise_options(context.config), keep,
                              corpus);
  });
  const double read_seconds = comm.max(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_read).count());
  if (comm.rank() == 0) spdlog::info("embed: texts read again in {}", runtime::format_seconds(read_seconds));
  std::vector<Removal> removed(static_cast<size_t>(local_docs), Removal::kKept);
  for (const auto& v : deduped_.verdicts) removed[v.row - range.begin] = Removal::kDuplicate;
  std::vector<int64_t> surv;  // local docs that survived dedup
  for (int64_t i = 0; i < local_docs; ++i)
    if (removed[i] == Removal::kKept) surv.push_back(i);
  em::DocBatch all;
  for (int64_t i = 0; i < local_docs; ++i) {
    all.texts.emplace_back(corpus.texts[i]);
    all.rows.push_back(range.begin + i);
    if (raw_) all.raw.emplace_back(corpus.raw[i]);
  }
  uint64_t embed_bytes = 0;
  for (int64_t i : surv) embed_bytes += corpus.texts[i].size();
  const auto t_embed = std::chrono::steady_clock::now();
  std::vector<float>& vectors = text_.vectors;
  vectors = embedder_.fit_embed(comm, all, surv, batch_);
  all = em::DocBatch{};
  const int dim = text_.dim = embedder_.dim();
#pragma omp parallel for schedule(static)
  for (int64_t k = 0; k < static_cast<int64_t>(surv.size()); ++k)
    l2_normalise(vectors.data() + k * dim, dim);
  const double embed_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_embed).count();
  std::vector<std::string>().swap(corpus.texts);
  std::vector<std::string>().swap(corpus.raw);
  malloc_trim(0);  // the texts were many small blocks: hand their pages back to the system
  text_.embedded = comm.sum(static_cast<int64_t>(surv.size()));
  // Throughput of fit_embed (the idf pass included) over all ranks: the embedded documents'
  // text bytes / the slowest rank's seconds.
  text_.text_bytes = comm.sum(static_cast<int64_t>(embed_bytes));
  text_.seconds = comm.max(embed_seconds);
  std::vector<SurvivorRef>& refs = text_.refs;
  refs.clear();
  for (int64_t i : surv)
    refs.push_back({static_cast<uint64_t>(range.begin + i), corpus.keep_score[i]});
  const cluster::RowRange target = stages::rank_rows(text_.embedded, comm.rank(), comm.size());
  vectors = cluster::redistribute_rows(comm, vectors, static_cast<size_t>(dim), target);
  refs = cluster::redistribute_rows(comm, refs, 1, target);
  if (comm.rank() == 0) text_.embedder_text = embedder_.state().dump() + "\n";
  const double mb_per_s =
      text_.seconds > 0 ? static_cast<double>(text_.text_bytes) / 1e6 / text_.seconds : 0.0;
  spdlog::info("embed: {} documents x {} dims ({}): {:.1f} MB/s, {:.1f} MB/s per core",
               text_.embedded, dim, method_, mb_per_s,
               mb_per_s / (comm.size() * threads_));
}

runtime::StageOutputs EmbedStage::save(cluster::Comm& comm,
                                        const runtime::StageContext& context) {
  // Each rank's block of vectors, the fitted embedder (rank 0).
  return runtime::save_rank_files(
      comm, context, kEmbedDir,
      [&](const std::string& tmp) {
        io::ArrayFileWriter out(tmp, "run-embeddings", kEmbeddingsFormatVersion);
        out.write("vectors", text_.vectors);
        out.write("survivors", text_.refs);
        out.close();
        if (comm.rank() == 0)
          io::publish_text(context.checkpoints.path(kEmbedderCheckpoint), text_.embedder_text);
      },
      {{"dim", text_.dim},
       {"docs", text_.embedded},
       {"text_bytes", text_.text_bytes},
       {"seconds", text_.seconds}},
      {kEmbedderCheckpoint});
}

void EmbedStage::load(cluster::Comm& comm, const runtime::StageContext& context,
                      const nlohmann::json& info) {
  const runtime::Checkpoints& checkpoints = context.checkpoints;
  cluster::run_local_phase(comm, "embed: read checkpoint", [&] {
    text_.dim = info.at("dim").get<int>();
    text_.embedded = info.at("docs").get<int64_t>();
    text_.text_bytes = info.at("text_bytes").get<int64_t>();
    text_.seconds = info.at("seconds").get<double>();
    const std::string file = checkpoints.path(runtime::rank_file(kEmbedDir, comm.rank()));
    io::ArrayFileReader in(file, "run-embeddings", kEmbeddingsFormatVersion);
    text_.vectors = in.read<float>("vectors");
    text_.refs = in.read<SurvivorRef>("survivors");
    in.close();
    const cluster::RowRange target = stages::rank_rows(text_.embedded, comm.rank(), comm.size());
    if (static_cast<int64_t>(text_.refs.size()) != target.size() ||
        text_.vectors.size() != text_.refs.size() * static_cast<size_t>(text_.dim))
      throw std::runtime_error(file + ": holds " + std::to_string(text_.refs.size()) +
                               " rows, this rank's range has " + std::to_string(target.size()));
    if (comm.rank() == 0) {
      const cluster::Bytes bytes = runtime::read_bytes(checkpoints.path(kEmbedderCheckpoint));
      text_.embedder_text.assign(bytes.begin(), bytes.end());
    }
  });
  spdlog::info("embed: read back {} documents x {} dims ({})", text_.embedded, text_.dim,
               method_);
}

}  // namespace sf::pipeline
