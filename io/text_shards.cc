#include "io/text_shards.h"

#include <zlib.h>
#include <zstd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>

namespace sf::io {

std::string shard_file_name(int64_t shard, const ShardLayout& layout) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%05lld", static_cast<long long>(shard));
  std::string name = std::string(buf) + (layout.format == TextFormat::kJsonl ? ".jsonl" : "");
  if (layout.compression == Compression::kZstd) name += ".zst";
  if (layout.compression == Compression::kGzip) name += ".gz";
  return name;
}

std::string shard_piece_name(int64_t shard, int rank) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%05lld.%05d.piece", static_cast<long long>(shard), rank);
  return buf;
}

Compression parse_compression(const std::string& name) {
  if (name == "zstd") return Compression::kZstd;
  if (name == "gzip") return Compression::kGzip;
  if (name == "none") return Compression::kNone;
  throw std::invalid_argument("unknown compression '" + name + "' (zstd, gzip or none)");
}

// ---- FrameCompressor ----

struct FrameCompressor::Zstd {
  ZSTD_CCtx* ctx = ZSTD_createCCtx();
  ~Zstd() { ZSTD_freeCCtx(ctx); }
};

FrameCompressor::FrameCompressor(Compression compression) : compression_(compression) {
  if (compression_ != Compression::kZstd) return;
  zstd_ = std::make_unique<Zstd>();
  if (zstd_->ctx == nullptr) throw std::bad_alloc();
  ZSTD_CCtx_setParameter(zstd_->ctx, ZSTD_c_compressionLevel, 3);
  ZSTD_CCtx_setParameter(zstd_->ctx, ZSTD_c_checksumFlag, 1);
}

FrameCompressor::~FrameCompressor() = default;

void FrameCompressor::compress(std::string_view in, std::string& out) {
  switch (compression_) {
    case Compression::kNone:
      out.assign(in);
      return;
    case Compression::kZstd: {
      out.resize(ZSTD_compressBound(in.size()));
      const size_t n = ZSTD_compress2(zstd_->ctx, out.data(), out.size(), in.data(), in.size());
      if (ZSTD_isError(n))
        throw std::runtime_error(std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
      out.resize(n);
      return;
    }
    case Compression::kGzip: {
      z_stream z{};
      // windowBits 15 + 16: a gzip member, header with no name and mtime 0.
      if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        throw std::runtime_error("gzip compression: deflateInit2 failed");
      out.resize(deflateBound(&z, static_cast<uLong>(in.size())));
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
      z.avail_in = static_cast<uInt>(in.size());
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = deflate(&z, Z_FINISH);
      out.resize(z.total_out);
      deflateEnd(&z);
      if (rc != Z_STREAM_END) throw std::runtime_error("gzip compression failed");
      return;
    }
  }
}

// ---- the plan ----

SegmentSummary summarize_segment(uint64_t begin, const std::vector<uint32_t>& sizes,
                                 const ShardLayout& layout) {
  SegmentSummary s;
  s.begin = begin;
  uint64_t pos = begin;
  for (uint32_t size : sizes) {
    const auto window = static_cast<int64_t>(pos / layout.max_file_bytes);
    if (s.windows == 0) s.first_window = window;
    if (window != s.last_window) ++s.windows;
    s.last_window = window;
    pos += size;
  }
  s.bytes = pos - begin;
  return s;
}

SegmentPlan plan_segment(const std::vector<SegmentSummary>& all, int rank,
                         const ShardLayout& layout) {
  SegmentPlan plan;
  const uint64_t frame = layout.frame_bytes;
  int64_t last_window = -1, shards = 0;
  int frame_owner = -1;  // the last rank before this one that began a frame
  for (size_t r = 0; r < all.size(); ++r) {
    const SegmentSummary& s = all[r];
    if (s.bytes == 0) continue;
    const bool starts_shard = s.first_window != last_window;
    const bool starts_frame = starts_shard || s.begin % frame == 0;
    if (static_cast<int>(r) == rank) {
      plan.prev_window = last_window;
      plan.prev_shard = shards - 1;
      plan.prefix_owner = starts_frame ? -1 : frame_owner;
    }
    shards += s.windows - (starts_shard ? 0 : 1);
    const bool cut_inside =
        s.windows > 1 || (s.begin + s.bytes - 1) / frame > s.begin / frame;
    if (starts_frame || cut_inside) frame_owner = static_cast<int>(r);
    last_window = s.last_window;
  }
  plan.shards = shards;
  return plan;
}

// ---- ShardSegmentWriter ----

ShardSegmentWriter::ShardSegmentWriter(std::string dir, int rank, const ShardLayout& layout,
                                       uint64_t begin, const SegmentPlan& plan)
    : dir_(std::move(dir)),
      rank_(rank),
      layout_(layout),
      pos_(begin),
      window_(plan.prev_window),
      shard_(plan.prev_shard),
      compressor_(layout.compression) {}

void ShardSegmentWriter::begin_record() {
  const auto window = static_cast<int64_t>(pos_ / layout_.max_file_bytes);
  if (window == window_) return;
  cut();  // the frame before belongs to the shard before
  window_ = window;
  ++shard_;
}

void ShardSegmentWriter::write(std::string_view bytes) {
  while (!bytes.empty()) {
    const uint64_t into_frame = pos_ % layout_.frame_bytes;
    if (into_frame == 0) cut();
    const size_t n = static_cast<size_t>(
        std::min<uint64_t>(bytes.size(), layout_.frame_bytes - into_frame));
    (in_prefix_ ? prefix_ : frame_).append(bytes.data(), n);
    bytes.remove_prefix(n);
    pos_ += n;
  }
}

void ShardSegmentWriter::cut() {
  if (pos_ == last_cut_) return;
  last_cut_ = pos_;
  if (in_prefix_) {
    in_prefix_ = false;  // the prefix is complete; frames of this rank's own from here
    return;
  }
  flush_frame();
}

void ShardSegmentWriter::flush_frame() {
  if (frame_.empty()) return;
  if (piece_shard_ != shard_) {
    if (piece_) piece_->close();
    piece_ = std::make_unique<FileWriter>(dir_ + "/" + shard_piece_name(shard_, rank_));
    piece_shard_ = shard_;
    if (first_piece_ < 0) first_piece_ = shard_;
    last_piece_ = shard_;
  }
  compressor_.compress(frame_, compressed_);
  piece_->write(compressed_);
  frame_.clear();
}

void ShardSegmentWriter::finish(const std::vector<std::string_view>& continuation) {
  for (std::string_view bytes : continuation) {
    if (bytes.empty()) continue;
    if (in_prefix_)
      throw std::logic_error("ShardSegmentWriter: bytes sent to a rank that began no frame");
    frame_.append(bytes);
  }
  flush_frame();
  if (piece_) piece_->close();
  piece_.reset();
}

}  // namespace sf::io
