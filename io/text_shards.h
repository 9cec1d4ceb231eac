// A stream of text records (kept/'s documents, in corpus order) written as numbered shard files
// `00000.jsonl.zst`, `00001.jsonl.zst`, … whose bytes do not depend on how many ranks wrote
// them. No MPI: pipeline/kept_shards.h is the collective that drives it.
//
// Positions are global offsets in the uncompressed stream. A shard starts at the first record
// that starts in a new window [k * max_file_bytes, (k + 1) * max_file_bytes), so a shard holds
// whole records, at most max_file_bytes plus its last record's bytes. Compressed shards are
// sequences of independent frames (zstd frames, gzip members), cut every frame_bytes of the
// stream and at every shard start: each frame is compressed whole by one rank, so the files are
// the same for any rank count, and they decompress as one stream.
//
// Each rank writes its segment of the stream with a ShardSegmentWriter. The bytes before its
// first cut continue a frame an earlier rank began (SegmentPlan::prefix_owner): they are
// handed to that rank (take_prefix), which ends its last frame with them (finish). A rank
// writes its frames into one piece file per shard it touches, `SSSSS.RRRRR.piece`; a shard's
// pieces, concatenated in rank order, are the shard file.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "io/text_corpus.h"
#include "io/text_output.h"

namespace sf::io {

struct ShardLayout {
  Compression compression = Compression::kZstd;
  uint64_t max_file_bytes = uint64_t{1} << 30;  // uncompressed bytes per shard (see above)
  uint64_t frame_bytes = uint64_t{4} << 20;     // uncompressed bytes per compressed frame
  TextFormat format = TextFormat::kJsonl;       // names: ".jsonl" for JSONL, none for fortune
};

// "00042.jsonl.zst" (zstd), "00042.jsonl.gz" (gzip), "00042.jsonl" (none); fortune: no ".jsonl".
std::string shard_file_name(int64_t shard, const ShardLayout& layout);
// "00042.00003.piece": rank 3's piece of shard 42.
std::string shard_piece_name(int64_t shard, int rank);
// "zstd", "gzip", "none" -> Compression; throws std::invalid_argument for another name.
Compression parse_compression(const std::string& name);

// Compresses frames one at a time: zstd (level 3, with a checksum) or gzip (zlib level 6).
class FrameCompressor {
 public:
  explicit FrameCompressor(Compression compression);
  ~FrameCompressor();
  FrameCompressor(const FrameCompressor&) = delete;
  FrameCompressor& operator=(const FrameCompressor&) = delete;
  // `out` = one complete frame (zstd) or member (gzip) holding `in`; kNone: `in` itself.
  void compress(std::string_view in, std::string& out);

 private:
  Compression compression_;
  struct Zstd;
  std::unique_ptr<Zstd> zstd_;
};

// What a rank tells the others about its segment: the windows its records start in.
struct SegmentSummary {
  uint64_t begin = 0, bytes = 0;  // global offset and length
  int64_t first_window = -1, last_window = -1;
  int64_t windows = 0;  // distinct windows
};

// `sizes`: the segment's records' bytes in order.
SegmentSummary summarize_segment(uint64_t begin, const std::vector<uint32_t>& sizes,
                                 const ShardLayout& layout);

// What a rank needs from the others' summaries to write its segment.
struct SegmentPlan {
  int64_t prev_window = -1;  // window of the record before the segment (-1: none)
  int64_t prev_shard = -1;   // its shard
  int prefix_owner = -1;     // the rank whose last frame the segment's first bytes end; -1: none
  int64_t shards = 0;        // shards of the whole stream
};

// `all`: every rank's summary, by rank.
SegmentPlan plan_segment(const std::vector<SegmentSummary>& all, int rank,
                         const ShardLayout& layout);

// Writes one rank's segment: records (begin_record, then write their bytes) into piece files
// in `dir`. Not thread-safe. Throws std::runtime_error naming a file that cannot be written.
class ShardSegmentWriter {
 public:
  ShardSegmentWriter(std::string dir, int rank, const ShardLayout& layout, uint64_t begin,
                     const SegmentPlan& plan);
  void begin_record();
  void write(std::string_view bytes);
  uint64_t position() const { return pos_; }  // global offset of the next byte
  // After the last record: the bytes before the segment's first cut (for plan.prefix_owner).
  std::string take_prefix() { return std::move(prefix_); }
  // `continuation`: the prefixes other ranks sent here, in rank order; they end the last frame.
  // Closes the pieces.
  void finish(const std::vector<std::string_view>& continuation);
  // The shards this rank wrote pieces of: [first_piece(), last_piece()], none when first is -1.
  int64_t first_piece() const { return first_piece_; }
  int64_t last_piece() const { return last_piece_; }

 private:
  void cut();
  void flush_frame();

  std::string dir_;
  int rank_;
  ShardLayout layout_;
  uint64_t pos_;
  int64_t window_, shard_;
  uint64_t last_cut_ = UINT64_MAX;
  bool in_prefix_ = true;
  std::string prefix_, frame_, compressed_;
  FrameCompressor compressor_;
  std::unique_ptr<FileWriter> piece_;
  int64_t piece_shard_ = -1, first_piece_ = -1, last_piece_ = -1;
};

}  // namespace sf::io
