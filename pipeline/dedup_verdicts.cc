// exact, near and verdicts (pipeline/text_dedup.h): the duplicates found across ranks, and the
// verdicts checkpoint.
#include <spdlog/spdlog.h>

#include <algorithm>

#include "cluster/archive.h"
#include "io/array_file.h"
#include "pipeline/text_dedup.h"

namespace sf::pipeline {

void write_verdicts_file(const std::string& path, const std::vector<dd::FinalVerdict>& verdicts) {
  io::ArrayFileWriter out(path, "dedup-verdicts", kVerdictsFormatVersion);
  out.write("verdicts", cluster::to_bytes(verdicts));
  out.close();
}

std::vector<dd::FinalVerdict> read_verdicts_file(const std::string& path) {
  io::ArrayFileReader in(path, "dedup-verdicts", kVerdictsFormatVersion);
  const auto bytes = in.read<char>("verdicts");
  in.close();
  return cluster::from_bytes<std::vector<dd::FinalVerdict>>(bytes, path);
}

void ExactStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const dd::LocalCorpus& corpus = flow_.corpus;
  const cluster::RowRange range = flow_.range;
  std::vector<dd::DocRef> docs(static_cast<size_t>(corpus.docs()));
  for (int64_t i = 0; i < corpus.docs(); ++i)
    docs[i] = dd::DocRef{static_cast<uint64_t>(range.begin + i), corpus.keep_score[i]};
  flow_.exact = flow_.setup.dedup ? dd::exact_duplicates(comm, range, docs, corpus.hashes)
                                  : std::vector<dd::Verdict>{};
  flow_.exact_removed = comm.sum(static_cast<int64_t>(flow_.exact.size()));
  if (context.config.dedup.write_pairs)
    for (const auto& v : flow_.exact) flow_.exact_pairs.push_back({v.row, v.representative, 1.0});
  spdlog::info("exact: {} exact duplicate(s) removed", flow_.exact_removed);
}

void NearStage::run(cluster::Comm& comm, const runtime::StageContext& context) {
  const runtime::Config& config = context.config;
  dd::LocalCorpus& corpus = flow_.corpus;
  const cluster::RowRange range = flow_.range;
  const dd::LshParams& lsh = flow_.setup.lsh;
  const bool exact_verify = flow_.setup.exact_verify;
  const int64_t local_docs = corpus.docs();
  std::vector<dd::Verdict>& near = flow_.near;
  dd::NearStats& near_stats = flow_.near_stats;
  int64_t split_off = 0;  // dedup.clusters: star: chained members kept
  if (flow_.setup.near) {
    std::vector<char> removed(static_cast<size_t>(local_docs), 0);
    for (const auto& v : flow_.exact) removed[v.row - range.begin] = 1;
    // The survivors' signatures in row order. Survivors have distinct hashes, so distinct
    // slots; when their slots increase (always with keep: first) they are compacted in place
    // and the signatures are held once, else copied.
    std::vector<dd::DocRef> survivors;
    std::vector<int32_t> slots;
    for (int64_t i = 0; i < local_docs; ++i) {
      if (removed[i] || corpus.slot[i] < 0) continue;
      survivors.push_back({static_cast<uint64_t>(range.begin + i), corpus.keep_score[i]});
      slots.push_back(corpus.slot[i]);
    }
    const size_t width = static_cast<size_t>(lsh.width());
    std::vector<uint32_t> sigs;
    std::vector<std::vector<uint64_t>> sets;
    if (std::is_sorted(slots.begin(), slots.end())) {
      for (size_t k = 0; k < slots.size(); ++k) {
        if (static_cast<size_t>(slots[k]) != k)
          std::copy_n(corpus.signatures.begin() + static_cast<std::ptrdiff_t>(slots[k] * width),
                      width, corpus.signatures.begin() + static_cast<std::ptrdiff_t>(k * width));
        if (exact_verify) std::swap(corpus.shingle_sets[k], corpus.shingle_sets[slots[k]]);
      }
      corpus.signatures.resize(slots.size() * width);
      sigs.swap(corpus.signatures);
      corpus.shingle_sets.resize(exact_verify ? slots.size() : 0);
      sets.swap(corpus.shingle_sets);
    } else {
      for (int32_t slot : slots) {
        const uint32_t* sig = corpus.signatures.data() + static_cast<size_t>(slot) * width;
        sigs.insert(sigs.end(), sig, sig + width);
        if (exact_verify) sets.push_back(corpus.shingle_sets[slot]);
      }
      std::vector<uint32_t>().swap(corpus.signatures);
      std::vector<std::vector<uint64_t>>().swap(corpus.shingle_sets);
    }
    near = dd::near_duplicates(comm, range, survivors, sigs, lsh, sets, &near_stats,
                               config.dedup.write_pairs ? &flow_.near_pairs : nullptr);
    if (config.dedup.clusters == "star") {
      // A member whose similarity to the representative is below the threshold (joined
      // through a chain of near pairs) is kept; the cluster is named by its representative,
      // so the label never names a member that left.
      std::vector<dd::Verdict> star;
      for (const auto& v : near)
        if (v.similarity >= lsh.threshold)
          star.push_back({v.row, v.representative, v.representative, v.similarity});
      split_off = static_cast<int64_t>(near.size() - star.size());
      near.swap(star);
    }
  }
  flow_.near_removed = comm.sum(static_cast<int64_t>(near.size()));
  flow_.split_off = split_off = comm.sum(split_off);
  if (flow_.setup.near)
    spdlog::info(
        "near: {} near duplicate(s) removed ({} bands x {} rows, threshold {}, clusters {}{}); {} "
        "candidate pair(s), {} verified",
        flow_.near_removed, lsh.bands, lsh.rows, lsh.threshold, config.dedup.clusters,
        config.dedup.clusters == "star"
            ? ", " + std::to_string(split_off) + " chained member(s) kept"
            : "",
        near_stats.candidate_pairs, near_stats.verified_edges);
}

void VerdictsStage::configure(runtime::StageOptions& options) {
  write_pairs_ = options.config().dedup.write_pairs;
  options.value("dedup", flow_.setup.dedup ? "on" : "off");  // exact's and near's
  options.keys({"dedup.near", "dedup.num_perm", "dedup.bands", "dedup.rows", "dedup.threshold",
                "dedup.verify", "dedup.clusters"});
  options.value("verdicts format", std::to_string(kVerdictsFormatVersion));
}

void VerdictsStage::run(cluster::Comm& comm, const runtime::StageContext&) {
  dd::FinalClusters final = dd::final_clusters(comm, flow_.begins, flow_.exact, flow_.near);
  flow_.verdicts = std::move(final.verdicts);
  flow_.clusters = final.clusters;
  flow_.largest_cluster = final.largest_cluster;
  std::vector<dd::Verdict>().swap(flow_.exact);
  std::vector<dd::Verdict>().swap(flow_.near);
}

runtime::StageOutputs VerdictsStage::save(cluster::Comm& comm,
                                           const runtime::StageContext& context) {
  return runtime::save_rank_files(
      comm, context, kVerdictsDir,
      [&](const std::string& tmp) { write_verdicts_file(tmp, flow_.verdicts); },
      {{"near_stats", near_counts_json(flow_.near_stats)},
       {"exact_removed", flow_.exact_removed},
       {"near_removed", flow_.near_removed},
       {"split_off", flow_.split_off},
       {"clusters", flow_.clusters},
       {"largest_cluster", flow_.largest_cluster}});
}

void VerdictsStage::load(cluster::Comm& comm, const runtime::StageContext& context,
                         const nlohmann::json& info) {
  const std::string file = context.checkpoints.path(runtime::rank_file(kVerdictsDir, comm.rank()));
  const cluster::RowRange range = flow_.range;
  cluster::run_local_phase(comm, "verdicts: read checkpoint", [&] {
    flow_.verdicts = read_verdicts_file(file);
    for (const dd::FinalVerdict& v : flow_.verdicts)
      if (v.row < static_cast<uint64_t>(range.begin) || v.row >= static_cast<uint64_t>(range.end))
        throw std::runtime_error(file + ": row " + std::to_string(v.row) + " is not this rank's");
    flow_.exact_removed = info.at("exact_removed").get<int64_t>();
    flow_.near_removed = info.at("near_removed").get<int64_t>();
    flow_.split_off = info.at("split_off").get<int64_t>();
    flow_.clusters = info.at("clusters").get<int64_t>();
    flow_.largest_cluster = info.at("largest_cluster").get<int64_t>();
    const nlohmann::json& near = info.at("near_stats");
    dd::NearStats& s = flow_.near_stats;
    for (auto [name, field] : {std::pair{"buckets", &s.buckets},
                               {"largest_bucket", &s.largest_bucket},
                               {"candidate_pairs", &s.candidate_pairs},
                               {"verified_edges", &s.verified_edges},
                               {"clusters", &s.clusters},
                               {"largest_cluster", &s.largest_cluster}})
      *field = near.at(name).get<int64_t>();
  });
  flow_.verdicts_reused = true;
  spdlog::info("verdicts: read back: {} exact, {} near duplicate(s); {} clusters",
               flow_.exact_removed, flow_.near_removed, flow_.clusters);
}

}  // namespace sf::pipeline
