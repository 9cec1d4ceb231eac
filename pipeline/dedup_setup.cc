// Config -> the dedup stages' options (pipeline/text_dedup.h).
#include "pipeline/text_dedup.h"

namespace sf::pipeline {

dd::KeepPolicy parse_keep_policy(const runtime::Config& config) {
  const std::string& keep = config.dedup.keep;
  dd::KeepPolicy policy;
  if (keep == "first") {
    policy.kind = dd::KeepPolicy::kFirst;
  } else if (keep == "longest") {
    policy.kind = dd::KeepPolicy::kLongest;
  } else if (keep.rfind("field:", 0) == 0 && keep.size() > 6) {
    policy.kind = dd::KeepPolicy::kField;
    policy.field = keep.substr(6);
  } else {
    throw runtime::ConfigError(
        config.source + ": dedup.keep: expected first|longest|field:<name>, got '" + keep + "'");
  }
  if (policy.kind == dd::KeepPolicy::kField && config.input.format == "fortune")
    throw runtime::ConfigError(config.source +
                                ": dedup.keep: fortune files have no fields, got '" + keep + "'");
  return policy;
}

io::TextFormat dedup_text_format(const runtime::Config& config) {
  const std::string& f = config.input.format;
  if (f == "auto" || f == "jsonl") return io::TextFormat::kJsonl;
  if (f == "fortune") return io::TextFormat::kFortune;
  throw runtime::ConfigError(config.source +
                              ": input.format: dedup reads jsonl or fortune (auto = jsonl), got '" +
                              f + "'");
}

dd::LshParams dedup_lsh_params(const runtime::Config& config) {
  const auto& d = config.dedup;
  if (d.bands == 0 && d.rows == 0) {
    dd::LshParams p = dd::optimal_lsh_params(d.threshold, d.num_perm);
    p.num_perm = d.num_perm;
    return p;
  }
  if (d.bands == 0 || d.rows == 0 || d.bands * d.rows > d.num_perm)
    throw runtime::ConfigError(config.source + ": dedup.bands x dedup.rows (" +
                                std::to_string(d.bands) + " x " + std::to_string(d.rows) +
                                ") must be at most dedup.num_perm (" + std::to_string(d.num_perm) +
                                "); set both to 0 to choose them from dedup.threshold");
  dd::LshParams p;
  p.bands = d.bands;
  p.rows = d.rows;
  p.threshold = d.threshold;
  p.num_perm = d.num_perm;
  return p;
}

dd::NormaliseOptions dedup_normalise_options(const runtime::Config& config) {
  dd::NormaliseOptions n;
  n.unicode = config.dedup.unicode;
  n.punctuation = dd::parse_punctuation(config.dedup.punctuation);
  n.fold_digits = config.dedup.fold_digits;
  return n;
}

io::TextReadOptions dedup_read_options(const runtime::Config& config, const dd::KeepPolicy& keep) {
  io::TextReadOptions r;
  r.format = dedup_text_format(config);
  r.text_field = config.input.text_field;
  r.id_field = config.input.id_field;
  r.keep_field = keep.kind == dd::KeepPolicy::kField ? keep.field : "";
  r.max_record_bytes = static_cast<uint64_t>(config.input.max_record_bytes);
  return r;
}

DedupSetup make_dedup_setup(const runtime::Config& config, bool dedup) {
  DedupSetup setup;
  setup.keep = parse_keep_policy(config);
  setup.read = dedup_read_options(config, setup.keep);
  setup.dedup = dedup;
  setup.near = dedup && config.dedup.near;
  setup.exact_verify = setup.near && config.dedup.verify == "exact";
  if (setup.near) setup.lsh = dedup_lsh_params(config);
  dd::parse_punctuation(config.dedup.punctuation);
  return setup;
}

nlohmann::json near_counts_json(const dd::NearStats& stats) {
  return {{"buckets", stats.buckets},
          {"largest_bucket", stats.largest_bucket},
          {"candidate_pairs", stats.candidate_pairs},
          {"verified_edges", stats.verified_edges},
          {"clusters", stats.clusters},
          {"largest_cluster", stats.largest_cluster}};
}

std::string DedupedCorpus::location_of_local(uint64_t row, const std::string& key_prefix) const {
  const auto i = static_cast<int64_t>(row - static_cast<uint64_t>(range.begin));
  if (!corpus.ids[static_cast<size_t>(i)].empty()) return "";
  const std::string& path = corpus.files[corpus.pieces[corpus.piece_of(i)].file].path;
  return ", \"" + key_prefix + "file\": " + nlohmann::json(path).dump() + ", \"" + key_prefix +
         "line\": " + std::to_string(corpus.file_line(i));
}

std::string DedupedCorpus::id_of_local(uint64_t row) const {
  const std::string& id = corpus.ids[row - static_cast<uint64_t>(range.begin)];
  return id.empty() ? std::to_string(row) : id;
}

}  // namespace sf::pipeline
