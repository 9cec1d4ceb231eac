// The embed stage of `run` (pipeline/text_index.h): the texts read again in batches for the
// fit, the survivors embedded into a vectors file per rank (in the same read for the hashed
// embedder, else in a second), checkpointed per rank.
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <functional>
#include <stdexcept>

#include "io/array_file.h"
#include "io/atomic_file.h"
#include "io/vector_file.h"
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

uint64_t embed_batch_bytes(uint64_t budget_bytes) {
  constexpr uint64_t kLeast = uint64_t{64} << 10, kMost = uint64_t{64} << 20;
  return budget_bytes == 0 ? kMost : std::clamp(budget_bytes / 16, kLeast, kMost);
}

uint64_t embed_need_bytes(uint64_t batch_bytes, int64_t docs, bool raw) {
  // A batch: its texts as read and normalised (and the raw records), its vectors (counted in
  // batch_bytes), the strings' own overhead (~64 bytes per document of at least ~64 bytes: at
  // most batch_bytes). Per document: the survivor index (8), whether it is one (1), its row
  // reference (16) and the reference's copy while it moves to its block (16).
  return (raw ? 4 : 3) * batch_bytes + 41 * static_cast<uint64_t>(std::max<int64_t>(0, docs));
}

std::string rank_vectors_file(const std::string& dir, int rank, const std::string& kind) {
  char name[32];
  std::snprintf(name, sizeof(name), "/vectors-%05d", rank);
  return dir + name + (kind.empty() ? "" : "." + kind) + ".npy";
}

namespace {

// Reads this rank's documents again (reread_documents), those with wanted[i] only, and hands
// them to `fn` in batches that end once their text bytes plus `row_bytes` per document reach
// `batch_bytes`, normalised as read+sketch normalises them. Local.
void for_each_text_batch(const DedupedCorpus& deduped, const stages::dedup::NormaliseOptions& norm,
                         bool raw, const std::vector<char>& wanted, uint64_t batch_bytes,
                         uint64_t row_bytes, const std::function<void(const em::DocBatch&)>& fn) {
  std::vector<std::string> texts, normalised, records;
  std::vector<int64_t> rows;
  uint64_t bytes = 0;
  auto flush = [&] {
    const auto n = static_cast<int64_t>(texts.size());
    normalised.resize(texts.size());
#pragma omp parallel for schedule(dynamic, 256)
    for (int64_t i = 0; i < n; ++i) stages::dedup::normalise_text(texts[i], norm, normalised[i]);
    em::DocBatch batch;
    batch.texts.assign(normalised.begin(), normalised.end());
    batch.rows = rows;
    if (raw) batch.raw.assign(records.begin(), records.end());
    fn(batch);
    texts.clear();
    normalised.clear();
    records.clear();
    rows.clear();
    bytes = 0;
  };
  const int64_t begin = deduped.range.begin;
  stages::dedup::reread_documents(deduped.corpus, deduped.setup.read,
                                  [&](int64_t i, const io::TextRecord& rec) {
    if (!wanted[static_cast<size_t>(i)]) return;
    texts.emplace_back(rec.text);
    if (raw) records.emplace_back(rec.raw);
    rows.push_back(begin + i);
    bytes += rec.text.size() + (raw ? rec.raw.size() : 0) + row_bytes;
    if (bytes >= batch_bytes) flush();
  });
  if (!texts.empty()) flush();
}

}  // namespace

// The keys of run_embed_options, embed.vectors' file, the rank count (the rows are stored in
// the block-aligned ranges of this rank count) and the checkpoint's format version.
void EmbedStage::configure(runtime::StageOptions& options) {
  const runtime::EmbedConfig& e = options.config().embed;
  method_ = options.read("embed.method", e.method);
  options.read("embed.dim", e.dim);
  options.read("embed.seed", e.seed);
  const std::string& vectors = options.read("embed.vectors", e.vectors);
  options.read("embed.vectors_dataset", e.vectors_dataset);
  raw_ = !options.read("embed.vectors_field", e.vectors_field).empty();
  options.value("ranks", std::to_string(ranks_));
  // An older shardforge's checkpoint (another layout) is redone, not read.
  options.value("format_version", std::to_string(kEmbeddingsFormatVersion));
  if (!vectors.empty()) options.input_files({vectors});
  batch_ = static_cast<int64_t>(e.batch);
}

void EmbedStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  // The rank's texts read again in batches (read+sketch keeps none, so that the dedup stages do
  // not hold them) for the embedder's fit over every document (idf over the corpus). The
  // hashed embedder embeds the dedup survivors in the same read, unfinished, into a file, and
  // finishes them from it once the idf is known; another embedder reads the survivors' texts a
  // second time (1 GB at 2 ranks: the hashed stage with two reads took about twice as long as
  // with one, bench/RESULTS.md, "`run` within a memory budget"). Either way the vectors go to
  // embed/vectors-R.npy batch by batch: a rank holds one batch, not its share.
  const stages::dedup::LocalCorpus& corpus = deduped_.corpus;
  const cluster::RowRange range = deduped_.range;
  const auto local_docs = static_cast<int64_t>(corpus.keep_score.size());
  const uint64_t batch_bytes = embed_batch_bytes(context.budget.bytes);
  // Before any work: what the stage holds on the rank that holds most against the budget.
  const auto need = static_cast<uint64_t>(
      comm.max(static_cast<double>(embed_need_bytes(batch_bytes, local_docs, raw_))));
  if (context.budget.bytes > 0 && need > context.budget.bytes)
    throw runtime::ConfigError(
        context.config.source + ": " +
        runtime::over_budget_message(
            "embed: a batch of texts (" + runtime::format_bytes(batch_bytes) +
                ", read, normalised and embedded) and the survivors' references of a rank",
            need, context.budget, "; run on more ranks or raise resources.memory_per_rank"));
  std::vector<char> all(static_cast<size_t>(local_docs), 1), kept = all;
  for (const auto& v : deduped_.verdicts) kept[v.row - range.begin] = 0;
  std::vector<int64_t> surv;  // local docs that survived dedup
  for (int64_t i = 0; i < local_docs; ++i)
    if (kept[i]) surv.push_back(i);
  const auto norm = dedup_normalise_options(context.config);

  // Pass 1: the fit, over batches of every document. An embedder that embeds while fitting
  // (hashed) also writes the survivors' unfinished rows to run.tmp/embed/vectors-R.unfinished.npy.
  const bool one_read = embedder_.embeds_while_fitting();
  const std::string vectors_path =
      context.checkpoints.path(rank_vectors_file(kEmbedDir, comm.rank()));
  // Under run.tmp/: whatever way the job ends, it does not stay behind (commands/run_job.cc).
  const std::string unfinished_path =
      context.checkpoints.path(rank_vectors_file(kEmbedTmpDir, comm.rank(), "unfinished"));
  uint64_t embed_bytes = 0;
  const auto t_fit = std::chrono::steady_clock::now();
  embedder_.fit_begin();
  cluster::run_local_phase(comm, "embed: fit", [&] {
    if (!one_read) {
      for_each_text_batch(deduped_, norm, raw_, all, batch_bytes, 0,
                          [&](const em::DocBatch& batch) { embedder_.fit_batch(batch); });
      return;
    }
    const int dim = embedder_.dim();
    const auto d = static_cast<size_t>(dim);
    io::NpyF32Writer out(unfinished_path, static_cast<int64_t>(surv.size()), dim);
    std::vector<float> rows;
    std::vector<int64_t> selected;
    for_each_text_batch(deduped_, norm, raw_, all, batch_bytes, d * sizeof(float),
                        [&](const em::DocBatch& batch) {
      selected.clear();
      for (size_t k = 0; k < batch.size(); ++k)
        if (kept[static_cast<size_t>(batch.rows[k] - range.begin)]) {
          selected.push_back(static_cast<int64_t>(k));
          embed_bytes += batch.texts[k].size();
        }
      rows.resize(selected.size() * d);
      embedder_.fit_embed_batch(batch, selected, rows.data());
      out.append(rows.data(), static_cast<int64_t>(selected.size()));
    });
    out.close();
  });
  embedder_.fit_end(comm);
  const int dim = text_.dim = embedder_.dim();
  const double fit_seconds = comm.max(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_fit).count());

  // Pass 2, to this rank's vectors file: the unfinished rows finished (one_read), else the
  // survivors read again, batch by batch, embedded over the OpenMP threads in tasks of
  // embed.batch documents; L2-normalised.
  const auto t_embed = std::chrono::steady_clock::now();
  const auto d = static_cast<size_t>(dim);
  // A document the embedder cannot embed fails the stage with the embedder's own error (an
  // io::InputError naming the row), not publish_file's "cannot write <vectors file>".
  std::exception_ptr embed_error;
  cluster::run_local_phase(comm, "embed", [&] {
    try {
      io::publish_file(vectors_path, [&](const std::string& tmp) {
        io::NpyF32Writer out(tmp, static_cast<int64_t>(surv.size()), dim);
        std::vector<float> rows;
        if (one_read) {
          const auto in = io::open_vector_file(unfinished_path, io::VectorFormat::kNpy);
          const auto per =
              static_cast<int64_t>(std::max<uint64_t>(batch_bytes / (d * sizeof(float)), 1));
          for (int64_t lo = 0; lo < in->rows(); lo += per) {
            const int64_t n = std::min(per, in->rows() - lo);
            rows.resize(static_cast<size_t>(n) * d);
            in->read(lo, n, rows.data());
            embedder_.finish_rows(rows.data(), n);
#pragma omp parallel for schedule(static)
            for (int64_t k = 0; k < n; ++k) l2_normalise(rows.data() + k * dim, dim);
            out.append(rows.data(), n);
          }
          out.close();
          return;
        }
        for_each_text_batch(
            deduped_, norm, raw_, kept, batch_bytes, d * sizeof(float),
            [&](const em::DocBatch& batch) {
              const auto n = static_cast<int64_t>(batch.size());
              rows.resize(static_cast<size_t>(n) * d);
              const int64_t per = std::max<int64_t>(batch_, 1), tasks = (n + per - 1) / per;
              std::exception_ptr error;
#pragma omp parallel for schedule(dynamic, 1)
              for (int64_t t = 0; t < tasks; ++t) {
                try {
                  const int64_t lo = t * per, hi = std::min(n, lo + per);
                  em::DocBatch part;
                  part.texts.assign(batch.texts.begin() + lo, batch.texts.begin() + hi);
                  part.rows.assign(batch.rows.begin() + lo, batch.rows.begin() + hi);
                  if (raw_) part.raw.assign(batch.raw.begin() + lo, batch.raw.begin() + hi);
                  float* out_rows = rows.data() + static_cast<size_t>(lo) * d;
                  embedder_.embed(part, out_rows);
                  for (int64_t k = 0; k < hi - lo; ++k) l2_normalise(out_rows + k * dim, dim);
                } catch (...) {
#pragma omp critical
                  if (!error) error = std::current_exception();
                }
              }
              if (error) {
                embed_error = error;
                std::rethrow_exception(error);
              }
              for (const std::string_view text : batch.texts) embed_bytes += text.size();
              out.append(rows.data(), n);
            });
        out.close();
      });
    } catch (...) {
      if (embed_error) std::rethrow_exception(embed_error);
      throw;
    }
    std::error_code ignored;  // run.tmp/ goes at the end anyway: free the disk now
    if (one_read) std::filesystem::remove(unfinished_path, ignored);
  });
  malloc_trim(0);  // the texts were many small blocks: hand their pages back to the system
  const double embed_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_embed).count();
  text_.embedded = comm.sum(static_cast<int64_t>(surv.size()));
  // Throughput of both passes over all ranks: the embedded documents' text bytes / the slowest
  // rank's seconds.
  text_.text_bytes = comm.sum(static_cast<int64_t>(embed_bytes));
  text_.seconds = fit_seconds + comm.max(embed_seconds);
  std::vector<SurvivorRef>& refs = text_.refs;
  refs.clear();
  for (int64_t i : surv)
    refs.push_back({static_cast<uint64_t>(range.begin + i), corpus.keep_score[i]});
  std::vector<int64_t>().swap(surv);
  const cluster::RowRange target = stages::rank_rows(text_.embedded, comm.rank(), comm.size());
  refs = cluster::redistribute_rows(comm, refs, 1, target);
  if (comm.rank() == 0) text_.embedder_text = embedder_.state().dump() + "\n";
  const double mb_per_s =
      text_.seconds > 0 ? static_cast<double>(text_.text_bytes) / 1e6 / text_.seconds : 0.0;
  spdlog::info("embed: {} documents x {} dims ({}): {:.1f} MB/s, {:.1f} MB/s per core (the fit "
               "pass, reading the texts once: {}; batches of {})",
               text_.embedded, dim, method_, mb_per_s, mb_per_s / (comm.size() * threads_),
               runtime::format_seconds(fit_seconds), runtime::format_bytes(batch_bytes));
}

runtime::StageOutputs EmbedStage::save(cluster::Comm& comm,
                                        const runtime::StageContext& context) {
  // Each rank's block of vectors, the fitted embedder (rank 0).
  return runtime::save_rank_files(
      comm, context, kEmbedDir,
      [&](const std::string& tmp) {
        io::ArrayFileWriter out(tmp, "run-embeddings", kEmbeddingsFormatVersion);
        out.write("survivors", text_.refs);
        out.close();
        if (comm.rank() == 0)
          io::publish_text(context.checkpoints.path(kEmbedderCheckpoint), text_.embedder_text);
      },
      {{"dim", text_.dim},
       {"docs", text_.embedded},
       {"text_bytes", text_.text_bytes},
       {"seconds", text_.seconds}},
      [&] {
        std::vector<std::string> extra = {kEmbedderCheckpoint};
        for (int r = 0; r < comm.size(); ++r) extra.push_back(rank_vectors_file(kEmbedDir, r));
        return extra;
      }());
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
    text_.refs = in.read<SurvivorRef>("survivors");
    in.close();
    const cluster::RowRange target = stages::rank_rows(text_.embedded, comm.rank(), comm.size());
    if (static_cast<int64_t>(text_.refs.size()) != target.size())
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
