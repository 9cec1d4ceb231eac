#include "pipeline/kept_shards.h"

#include <cstring>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "io/atomic_file.h"
#include "io/text_output.h"

namespace sf::pipeline {

namespace fs = std::filesystem;

io::ShardLayout kept_layout(const runtime::Config& config, io::TextFormat format) {
  io::ShardLayout layout;
  layout.compression = io::parse_compression(config.output.compression);
  layout.max_file_bytes = config.output.max_file_bytes.bytes;
  layout.format = format;
  return layout;
}

namespace {

// Plain records through the byte collectives.
template <typename T>
cluster::Bytes bytes_of(const T& value) {
  const auto* raw = reinterpret_cast<const char*>(&value);
  return cluster::Bytes(raw, raw + sizeof(T));
}
template <typename T>
T value_of(const cluster::Bytes& bytes) {
  T value;
  if (bytes.size() != sizeof(T)) throw std::logic_error("write_shards: a message of the wrong size");
  std::memcpy(&value, bytes.data(), sizeof(T));
  return value;
}

// Appends the file at `path` to `out`.
void append_file(const std::string& path, io::FileWriter& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot open");
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    out.write(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) throw std::runtime_error(path + ": read failed");
}

}  // namespace

WrittenShards write_shards(cluster::Comm& comm, const std::string& dir,
                           const io::ShardLayout& layout, const std::vector<uint32_t>& sizes,
                           const std::function<void(io::ShardSegmentWriter&)>& produce) {
  if (layout.max_file_bytes == 0 || layout.frame_bytes == 0)
    throw std::invalid_argument("write_shards: max_file_bytes and frame_bytes must be positive");
  uint64_t local_bytes = 0;
  for (uint32_t s : sizes) local_bytes += s;
  const std::vector<int64_t> offsets = comm.offsets(static_cast<int64_t>(local_bytes));
  const auto begin = static_cast<uint64_t>(offsets[static_cast<size_t>(comm.rank())]);

  // Which shards and frames each segment starts: from every rank's summary.
  std::vector<io::SegmentSummary> summaries;
  for (const auto& part : comm.allgather(bytes_of(io::summarize_segment(begin, sizes, layout))))
    summaries.push_back(value_of<io::SegmentSummary>(part));
  const io::SegmentPlan plan = io::plan_segment(summaries, comm.rank(), layout);

  // This rank's frames into its pieces; the bytes before its first cut to the rank whose frame
  // they end.
  std::vector<cluster::Bytes> send(static_cast<size_t>(comm.size()));
  io::ShardSegmentWriter writer(dir, comm.rank(), layout, begin, plan);
  cluster::run_local_phase(comm, "write kept shards", [&] {
    fs::create_directories(dir);
    produce(writer);
    if (writer.position() != begin + local_bytes)
      throw std::runtime_error("the documents read again hold " +
                               std::to_string(writer.position() - begin) + " bytes, not " +
                               std::to_string(local_bytes) +
                               " as when first read: has an input file changed?");
    std::string prefix = writer.take_prefix();
    if (!prefix.empty()) send[static_cast<size_t>(plan.prefix_owner)].assign(prefix.begin(),
                                                                             prefix.end());
  });
  const std::vector<cluster::Bytes> received = comm.alltoallv(send);
  send.clear();
  cluster::run_local_phase(comm, "write kept shards: last frame", [&] {
    std::vector<std::string_view> continuation;
    for (const auto& part : received) continuation.emplace_back(part.data(), part.size());
    writer.finish(continuation);
  });

  // Each shard's pieces, in rank order, joined by the first rank that holds one.
  struct Pieces {
    int64_t first, second;  // [first, last] shard; first -1: none
  };
  std::vector<Pieces> pieces;  // by rank
  for (const auto& part : comm.allgather(bytes_of(Pieces{writer.first_piece(), writer.last_piece()})))
    pieces.push_back(value_of<Pieces>(part));
  WrittenShards out;
  out.bytes = static_cast<uint64_t>(offsets.back());
  for (int64_t s = 0; s < plan.shards; ++s) out.names.push_back(io::shard_file_name(s, layout));
  cluster::run_local_phase(comm, "join kept shards", [&] {
    const int me = comm.rank();
    const auto [first, last] = pieces[static_cast<size_t>(me)];
    if (first < 0) return;
    for (int64_t s = first; s <= last; ++s) {
      bool mine = true;  // no earlier rank holds a piece of s
      for (int r = 0; r < me; ++r) mine = mine && !(pieces[r].first <= s && s <= pieces[r].second);
      if (!mine) continue;
      std::vector<std::string> parts = {dir + "/" + io::shard_piece_name(s, me)};
      for (int r = me + 1; r < comm.size(); ++r)
        if (pieces[r].first <= s && s <= pieces[r].second)
          parts.push_back(dir + "/" + io::shard_piece_name(s, r));
      const std::string path = dir + "/" + out.names[static_cast<size_t>(s)];
      if (parts.size() == 1) {
        fs::rename(parts[0], path);
        continue;
      }
      io::publish_file(path, [&](const std::string& tmp) {
        io::FileWriter file(tmp);
        for (const auto& part : parts) append_file(part, file);
        file.close();
      });
      for (const auto& part : parts) fs::remove(part);
    }
  });
  return out;
}

WrittenShards write_kept_documents(cluster::Comm& comm, const DedupedCorpus& flow,
                                   const std::vector<char>& removed, const std::string& dir,
                                   const io::ShardLayout& layout,
                                   const stages::ProgressFn& progress) {
  const dd::LocalCorpus& corpus = flow.corpus;
  const io::TextReadOptions& read = flow.setup.read;
  std::vector<uint32_t> sizes;
  for (int64_t i = 0; i < corpus.docs(); ++i)
    if (!removed[static_cast<size_t>(i)]) sizes.push_back(corpus.raw_bytes[static_cast<size_t>(i)]);
  // The records are found again by their lines; JSONL lines are not parsed again
  // (io::TextReadOptions::raw_lines).
  io::TextReadOptions again = read;
  again.raw_lines = read.format == io::TextFormat::kJsonl;
  const std::string_view end = read.format == io::TextFormat::kJsonl ? "\n" : "%\n";
  const int64_t docs = corpus.docs();
  return write_shards(comm, dir, layout, sizes, [&](io::ShardSegmentWriter& out) {
    stages::report(progress, "write kept: records", 0, docs);
    dd::reread_documents(corpus, again, [&](int64_t i, const io::TextRecord& rec) {
      if ((i + 1) % 4096 == 0 || i + 1 == docs)
        stages::report(progress, "write kept: records", i + 1, docs);
      if (removed[static_cast<size_t>(i)]) return;
      out.begin_record();
      out.write(rec.raw);
      out.write(end);
    });
  });
}

}  // namespace sf::pipeline
