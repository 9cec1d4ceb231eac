// read+sketch (pipeline/text_dedup.h): reading, sketching, the sketch checkpoint of each rank
// and the bad-input report.
#include <spdlog/spdlog.h>

#include <boost/serialization/is_bitwise_serializable.hpp>
#include <boost/serialization/map.hpp>
#include <boost/serialization/utility.hpp>
#include <boost/serialization/vector.hpp>
#include <algorithm>
#include <chrono>
#include <iterator>

#include "cluster/archive.h"
#include "io/array_file.h"
#include "io/atomic_file.h"
#include "pipeline/text_dedup.h"
#include "runtime/memory_budget.h"
#include "runtime/run_dir.h"
#include "runtime/stop.h"
#include "stages/dedup/memory_plan.h"

namespace sf::pipeline {

namespace {

// The sketch checkpoint's fields besides the bulk arrays (signatures, shingle sets): one list
// for writing and reading. Saving does not modify the corpus (Boost's serialize() serves both
// directions, hence the non-const reference).
struct SketchFields {
  dd::LocalCorpus& c;

  template <class Archive>
  void serialize(Archive& ar, unsigned version) {
    if (Archive::is_loading::value) cluster::check_version<SketchFields>(version, 2);
    ar & c.piece_lines & c.piece_docs;
    ar & c.keep_score & c.hashes & c.slot & c.raw_bytes & c.doc_line & c.ids;  // per document
    ar & c.slots & c.local_exact_skipped & c.text_bytes & c.signature_text_bytes;
    ar & c.normalise_seconds & c.signature_seconds;
    ar & c.bad.total & c.bad.entries;
  }
};

}  // namespace

}  // namespace sf::pipeline

// Exact hashes go into archives as raw bytes (one copy per vector, not one call per field).
BOOST_IS_BITWISE_SERIALIZABLE(sf::stages::dedup::Hash128)
BOOST_CLASS_VERSION(sf::pipeline::SketchFields, sf::pipeline::kSketchFormatVersion)

namespace sf::pipeline {

void write_sketch_file(const std::string& path, const dd::LocalCorpus& corpus) {
  io::ArrayFileWriter out(path, "dedup-sketch", kSketchFormatVersion);
  out.write("fields", cluster::to_bytes(SketchFields{const_cast<dd::LocalCorpus&>(corpus)}));
  // The bulk arrays stay array sections (one copy each; a resume that knows its verdicts
  // skips them): faster than putting them in the archive too. bench/archive_bench.cc, 100k
  // synthetic docs (99 MB): write 0.55 s, read 0.46 s as sections; 0.86 s, 0.71 s all in one
  // archive.
  out.write("signatures", corpus.signatures);
  std::vector<uint64_t> set_offsets{0}, shingles;
  for (const auto& set : corpus.shingle_sets) {
    shingles.insert(shingles.end(), set.begin(), set.end());
    set_offsets.push_back(shingles.size());
  }
  out.write("shingle_set_offsets", set_offsets);
  out.write("shingles", shingles);
  out.close();
}

void read_sketch_file(const std::string& path, dd::LocalCorpus& corpus, bool signatures) {
  io::ArrayFileReader in(path, "dedup-sketch", kSketchFormatVersion);
  const auto fields = in.read<char>("fields");
  std::vector<uint32_t> sigs = in.read<uint32_t>("signatures");
  const auto set_offsets = in.read<uint64_t>("shingle_set_offsets");
  const auto shingles = in.read<uint64_t>("shingles");
  in.close();
  SketchFields into{corpus};
  cluster::from_bytes_into(fields, into, path);
  auto fail = [&](const std::string& what) {
    throw std::runtime_error(path + ": does not fit this rank's input: " + what);
  };
  const size_t docs = corpus.keep_score.size();
  if (corpus.piece_lines.size() != corpus.pieces.size() ||
      corpus.piece_docs.size() != corpus.pieces.size() + 1)
    fail(std::to_string(corpus.piece_lines.size()) + " pieces, the input plans " +
         std::to_string(corpus.pieces.size()));
  for (size_t n : {corpus.hashes.size(), corpus.slot.size(), corpus.raw_bytes.size(),
                   corpus.doc_line.size(), corpus.ids.size()})
    if (n != docs) fail("per-document fields of different lengths");
  if (corpus.piece_docs.back() != static_cast<int64_t>(docs)) fail("piece_docs");
  if (set_offsets.empty() || set_offsets.back() != shingles.size()) fail("shingle set offsets");
  if (signatures) {
    corpus.signatures = std::move(sigs);
    corpus.shingle_sets.clear();
    for (size_t k = 0; k + 1 < set_offsets.size(); ++k) {
      if (set_offsets[k] > set_offsets[k + 1]) fail("shingle set offsets");
      corpus.shingle_sets.emplace_back(shingles.begin() + static_cast<std::ptrdiff_t>(set_offsets[k]),
                                       shingles.begin() + static_cast<std::ptrdiff_t>(set_offsets[k + 1]));
    }
  }
}

void check_dedup_budget(cluster::Comm& comm, const runtime::Config& config,
                        const dd::DedupShare& share, int width, bool shingle_sets, bool copied,
                        bool partial, const runtime::MemoryBudget& budget) {
  const dd::DedupNeeds mine = dd::dedup_needs(share, width, shingle_sets, copied);
  // The largest rank's figures, so that every rank says the same.
  double most[] = {static_cast<double>(mine.sketch), static_cast<double>(mine.exact),
                   static_cast<double>(mine.near),   static_cast<double>(share.docs),
                   static_cast<double>(share.slots), static_cast<double>(share.shingle_bytes),
                   partial ? 1.0 : 0.0};
  comm.allreduce_max(most, std::size(most));
  const auto sketch = static_cast<uint64_t>(most[0]), exact = static_cast<uint64_t>(most[1]),
             near = static_cast<uint64_t>(most[2]);
  const uint64_t need = std::max({sketch, exact, near});
  if (budget.bytes == 0 || need <= budget.bytes) return;
  const char* stage = need == near    ? "near (per band: its keys, buckets, candidate pairs)"
                      : need == exact ? "exact (the hash shuffle)"
                                      : "read+sketch";
  std::string what = std::string("dedup ") + stage + ": the largest rank's share of the input, " +
                     std::to_string(static_cast<int64_t>(most[3])) + " record(s)" +
                     (most[6] > 0 ? " (at least: its reading stopped at the budget)" : "");
  if (width > 0)
    what += ", " + std::to_string(static_cast<int64_t>(most[4])) + " signature(s) x " +
            std::to_string(width) + " values (dedup.num_perm) x 4 bytes";
  if (shingle_sets)
    what += ", shingle sets of " + runtime::format_bytes(static_cast<uint64_t>(most[5])) +
            " (dedup.verify exact)";
  throw runtime::ConfigError(
      config.source + ": " +
      runtime::over_budget_message(
          what, need, budget,
          std::string("; run on more ranks, ") + (width > 0 ? "lower dedup.num_perm, " : "") +
              (shingle_sets ? "use dedup.verify signature, " : "") +
              "or raise resources.memory_per_rank"));
}

void ReadSketchStage::configure(runtime::StageOptions& options) {
  const runtime::Config& config = options.config();
  flow_.setup = make_dedup_setup(config, dedup_);
  const DedupSetup& setup = flow_.setup;
  io::stat_text_files(config.input.paths);  // a missing input: the reader's error, first
  // What the sketch depends on: not the LSH bands or the threshold as such, only the
  // signature width they lead to.
  options.keys({"input.paths", "input.format", "input.text_field", "input.id_field",
                "input.max_record_bytes", "dedup.keep", "dedup.ngram", "dedup.seed",
                "dedup.unicode", "dedup.punctuation", "dedup.fold_digits"});
  options.input_files(config.input.paths);
  // The pieces depend on the rank count and on how io::plan_text_pieces spreads the bytes
  // (a sketch made by the old spread, whole compressed files, is redone).
  options.value("ranks", std::to_string(flow_.ranks));
  options.value("input spread", "bytes, compressed JSONL split");
  options.value("minhash width", std::to_string(setup.near ? setup.lsh.width() : 0));
  options.value("shingle sets", setup.exact_verify ? "kept" : "none");
  options.value("sketch format", std::to_string(kSketchFormatVersion));
}

void ReadSketchStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const runtime::Config& config = context.config;
  const runtime::Checkpoints& checkpoints = context.checkpoints;
  const DedupSetup& setup = flow_.setup;
  const io::TextReadOptions& read = setup.read;
  dd::LocalCorpus& corpus = flow_.corpus;
  // Verdicts that will be read back make the signatures unnecessary; a later stage that is
  // reused, the texts.
  const bool signatures = !context.reused("verdicts");
  flow_.texts = !texts_for_.empty() && context.reused(texts_for_) ? dd::KeptTexts{} : texts_;
  dd::SketchOptions options;
  options.read = read;
  options.keep = setup.keep;
  options.normalise = dedup_normalise_options(config);
  options.ngram = config.dedup.ngram;
  options.near = setup.near;
  options.keep_sets = setup.exact_verify;
  options.texts = flow_.texts;
  const dd::MinHasher minhash(setup.near ? setup.lsh.width() : 1,
                              static_cast<uint32_t>(config.dedup.seed));
  // This rank's marker: the stage's parts under its own name, so that its redo line says what
  // changed, and the rank.
  const std::string sketch_file = runtime::rank_file(kSketchDir, comm.rank());
  runtime::Fingerprint mine =
      context.fingerprint.for_stage(sketch_file.substr(0, sketch_file.size() - 5));
  mine.value("rank", std::to_string(comm.rank()));
  // The dedup stages' memory, counted as the records come: a rank whose share would not fit
  // stops reading at the next batch, and every rank then fails alike before anything is
  // published (check_dedup_budget).
  const int width = setup.near && signatures ? setup.lsh.width() : 0;
  const bool sets = setup.exact_verify && signatures;
  const bool copied = setup.keep.kind != dd::KeepPolicy::kFirst;
  dd::ShareMeter meter;
  bool reused = false, abandoned = false, over = false;
  const auto over_budget = [&] {
    if (context.budget.bytes == 0) return false;
    const dd::DedupNeeds n = dd::dedup_needs(meter.update(corpus), width, sets, copied);
    over = std::max({n.sketch, n.exact, n.near}) > context.budget.bytes;
    return over;
  };
  cluster::run_local_phase(comm, "read+sketch", [&] {
    corpus.files = io::stat_text_files(config.input.paths);
    corpus.pieces = io::plan_text_pieces(corpus.files, read.format, comm.rank(), comm.size());
    if (config.resume) {
      const std::string why = checkpoints.verify(mine);
      if (why.empty()) {
        read_sketch_file(checkpoints.path(sketch_file), corpus, signatures);
        if (flow_.texts.normalised || flow_.texts.raw)
          dd::read_texts(read, options.normalise, flow_.texts, corpus);
        reused = true;
        return;
      }
      // A rank that never finished is expected; a sketch that no longer verifies is news.
      if (why != runtime::Checkpoints::kNoMarker)
        spdlog::warn("{}: redo: {}", mine.stage(), why);
    }
    checkpoints.forget(mine.stage());
    const auto t0 = std::chrono::steady_clock::now();
    try {
      dd::read_and_sketch(
          options, minhash, corpus,
          [&](int64_t done, int64_t total) {
            if (context.progress) context.progress("read+sketch: bytes", done, total);
          },
          [&] { return runtime::stop_requested() || over_budget(); });
    } catch (const dd::ReadingStopped&) {
      abandoned = true;
      // Over the budget: the agreed error below. A signal: this rank stops at once, without a
      // sketch; run_step's agreement then stops every rank (a Slurm KillWait is shorter than
      // a long read).
      if (!over)
        spdlog::warn("read+sketch: stop requested; reading abandoned after {} record(s)",
                     corpus.keep_score.size());
      return;
    }
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    uint64_t bytes = 0;
    for (uint32_t b : corpus.raw_bytes) bytes += b;
    spdlog::info(
        "read+sketch: this rank read {} record(s) ({} of records) in {} ({:.0f} "
        "records/s, {}/s)",
        corpus.docs(), runtime::human_bytes(static_cast<uint64_t>(bytes)),
        runtime::format_seconds(secs), secs > 0 ? static_cast<double>(corpus.docs()) / secs : 0.0,
        runtime::human_bytes(secs > 0 ? static_cast<uint64_t>(static_cast<double>(bytes) / secs) : 0));
  });
  check_dedup_budget(comm, config, meter.update(corpus), width, sets, copied, over,
                     context.budget);
  runtime::run_step(comm, "read+sketch", [&] {
    if (reused || abandoned) return;
    // The checkpoint: a safe point once it is written.
    io::publish_file(checkpoints.path(sketch_file),
                     [&](const std::string& tmp) { write_sketch_file(tmp, corpus); });
    checkpoints.mark_complete(mine, {sketch_file},
                              {{"docs", corpus.keep_score.size()}, {"slots", corpus.slots}});
  });
  flow_.sketches_reused = static_cast<int>(comm.sum(int64_t{reused}));
  if (comm.rank() == 0 && config.resume)
    spdlog::info("read+sketch: {} of {} rank(s) read their verified sketch back (no reading, "
                 "no MinHash){}",
                 flow_.sketches_reused, comm.size(),
                 flow_.sketches_reused == comm.size() ? "" : "; the others read their input");

  // Global rows: a prefix sum of the ranks' record counts.
  flow_.begins = comm.offsets(corpus.docs());
  flow_.range = {flow_.begins[comm.rank()], flow_.begins[comm.rank() + 1]};
  flow_.total_docs = flow_.begins.back();
  flow_.local_bytes_in = 0;
  for (uint32_t b : corpus.raw_bytes) flow_.local_bytes_in += b;

  // Bad input: per file, with file line numbers.
  dd::BadInputReport bad = dd::gather_bad_input(comm, corpus, !config.input.strict);
  cluster::run_local_phase(comm, "check input", [&] {
    if (config.input.strict && comm.rank() == 0 && bad.total > 0)
      throw io::InputError(bad.first + " (input.strict is true; " + std::to_string(bad.total) +
                           " bad record(s) in all)");
  });
  flow_.bad_report = std::move(bad.per_file);
  flow_.bad_total = bad.total;
  spdlog::info(
      "dedup: {} documents in {} file(s) ({} bad record(s) skipped); {} rank(s) x {} thread(s); "
      "this rank: rows [{}, {})",
      flow_.total_docs, corpus.files.size(), flow_.bad_total, comm.size(), flow_.threads,
      flow_.range.begin, flow_.range.end);
}

}  // namespace sf::pipeline
