// What the text dedup stages hold on one rank, from the counts of its share of the input, for
// the memory budget (runtime/memory_budget.h). read+sketch holds its records' fields, their
// signatures (slots x width x 4 bytes), shingle sets (dedup.verify: exact) and kept texts;
// exact adds its hash shuffle; near adds, one band at a time, the band's keys and buckets and
// the candidate pairs (kept unique between bands: a few per record). Each is linear in the
// rank's records: the per-band step holds one band's keys, never all bands', so it needs no
// rounds. Not planned: the verification's copies of the remote targets' signatures (or
// shingle sets), one per distinct candidate target, which only the band step finds (near
// duplicates are a small share of a corpus; a corpus of nothing but near duplicates can hold
// up to one more copy of its signatures there).
#pragma once

#include <cstdint>

#include "stages/dedup/corpus.h"

namespace sf::stages::dedup {

// One rank's share, as counted so far.
struct DedupShare {
  int64_t docs = 0;            // records
  int64_t slots = 0;           // signatures (distinct normalised texts)
  uint64_t id_bytes = 0;       // the ids' text
  uint64_t shingle_bytes = 0;  // the shingle sets' values
  uint64_t text_bytes = 0;     // texts kept for a later stage
};

// Bytes one rank holds at the peak of each stage.
struct DedupNeeds {
  uint64_t sketch = 0, exact = 0, near = 0;
};

// `width`: signature values per record (0: no near dedup); `shingle_sets`: dedup.verify
// exact; `copied`: near copies the survivors' signatures (dedup.keep other than first). No MPI.
DedupNeeds dedup_needs(const DedupShare& share, int width, bool shingle_sets, bool copied);

// Counts a LocalCorpus as it grows: each call adds what was appended since the last one (the
// corpus's vectors only grow while it is read), so calling it after every batch costs the new
// records only. Local.
class ShareMeter {
 public:
  const DedupShare& update(const LocalCorpus& corpus);
  const DedupShare& share() const { return share_; }

 private:
  DedupShare share_;
  size_t ids_ = 0, sets_ = 0, texts_ = 0, raw_ = 0;
};

}  // namespace sf::stages::dedup
