#include "stages/dedup/memory_plan.h"

#include <string>
#include <vector>

namespace sf::stages::dedup {
namespace {

// Per record: keep_score, hash, slot, raw_bytes, doc_line (8 + 16 + 4 + 4 + 8) and its id's
// std::string.
constexpr uint64_t kDocBytes = 40 + sizeof(std::string);
// read_and_sketch's hash -> slot map per signature (a node of an unordered_map).
constexpr uint64_t kSeenSlotBytes = 48;
// The exact stage per record: its DocRef, its hash group sent and received, the owner's
// verdict sent and received, its verdict.
constexpr uint64_t kExactDocBytes = 16 + 2 * 48 + 2 * 32 + 32;
// The near stage per signature: one band's entry and sort scratch (2 x 16), its bucket part
// sent and received (24 + 32), the bucket minimum sent and known (2 x 16), the candidate pairs
// kept between bands (up to 5 per record x 16), its edge and target (16 + 8) and survivor
// (DocRef, slot: 20).
constexpr uint64_t kNearSlotBytes = 2 * 16 + 24 + 32 + 2 * 16 + 5 * 16 + 16 + 8 + 20;

}  // namespace

DedupNeeds dedup_needs(const DedupShare& share, int width, bool shingle_sets, bool copied) {
  const auto docs = static_cast<uint64_t>(share.docs);
  const auto slots = static_cast<uint64_t>(share.slots);
  const uint64_t signatures = slots * static_cast<uint64_t>(width > 0 ? width : 0) * 4;
  const uint64_t sets =
      shingle_sets ? share.shingle_bytes + slots * sizeof(std::vector<uint64_t>) : 0;
  DedupNeeds needs;
  // read_and_sketch's map of the texts seen (hash -> slot) while it reads.
  const uint64_t seen = width > 0 ? slots * kSeenSlotBytes : 0;
  const uint64_t held = docs * kDocBytes + share.id_bytes + signatures + sets + share.text_bytes;
  needs.sketch = held + seen;
  needs.exact = held + docs * kExactDocBytes;
  // The survivors' signatures and sets, copied when their slots are not in row order, beside
  // the band step.
  needs.near = width > 0 ? held + (copied ? signatures + sets : 0) + slots * kNearSlotBytes : 0;
  return needs;
}

const DedupShare& ShareMeter::update(const LocalCorpus& corpus) {
  share_.docs = corpus.docs();
  share_.slots = corpus.slots;
  for (; ids_ < corpus.ids.size(); ++ids_) share_.id_bytes += corpus.ids[ids_].size();
  for (; sets_ < corpus.shingle_sets.size(); ++sets_)
    share_.shingle_bytes += corpus.shingle_sets[sets_].size() * sizeof(uint64_t);
  for (; texts_ < corpus.texts.size(); ++texts_)
    share_.text_bytes += corpus.texts[texts_].size() + sizeof(std::string);
  for (; raw_ < corpus.raw.size(); ++raw_)
    share_.text_bytes += corpus.raw[raw_].size() + sizeof(std::string);
  return share_;
}

}  // namespace sf::stages::dedup
