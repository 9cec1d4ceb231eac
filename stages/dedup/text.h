// What the dedup compares: normalised text, its word n-gram shingles and its exact hash.
//
// Normalisation (normalise_text), in this order:
//   1. Unicode NFKC and full case folding (utf8proc: COMPAT | COMPOSE | CASEFOLD | STABLE),
//      default-ignorable code points (soft hyphen, zero-width joiners, ...) dropped;
//   2. punctuation: every code point of a Unicode P* (punctuation) or S* (symbol) category --
//      for ASCII exactly Python's string.punctuation -- is removed ("don't" -> "dont"), or
//      becomes a word break, or is kept (Punctuation);
//   3. digits (Unicode Nd) become '0' when fold_digits ("room 101" -> "room 000");
//   4. whitespace (Unicode Z*, and control characters Cc) separates words: the result is the
//      words joined by single ASCII spaces, with none at either end.
// ASCII input takes a fast path with the same result (tested against the utf8proc path).
// REQUIRES: valid UTF-8 input (io::valid_utf8); other input is passed through utf8proc,
// which replaces nothing: invalid sequences end the text there.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "stages/dedup/clusters.h"  // Hash128

namespace sf::stages::dedup {

enum class Punctuation { kRemove, kSpace, kKeep };
// "remove" | "space" | "keep"; throws std::invalid_argument otherwise.
Punctuation parse_punctuation(const std::string& name);

struct NormaliseOptions {
  bool unicode = true;  // false: skip step 1 for non-ASCII text (case folding of ASCII stays)
  Punctuation punctuation = Punctuation::kRemove;
  bool fold_digits = false;
  bool ascii_fast_path = true;  // false: always through utf8proc (for tests)
};

// Replaces `out` with the normalised `text`. Thread-safe (no shared state).
void normalise_text(std::string_view text, const NormaliseOptions& options, std::string& out);

// Appends to `out` the 64-bit hashes (XXH3_64bits, seed 0) of the word n-grams of a normalised
// text: each n-gram is hashed as its bytes "w1 w2 ... wn" (a substring of the text). A text
// of fewer than `ngram` words gives one shingle of all its words; an empty text none.
// Duplicates are not removed. REQUIRES: ngram >= 1.
void shingle_hashes(std::string_view normalised, int ngram, std::vector<uint64_t>& out);

// 128-bit exact-dedup key of a normalised text (XXH3_128bits, seed 0).
Hash128 exact_hash(std::string_view normalised);

}  // namespace sf::stages::dedup
