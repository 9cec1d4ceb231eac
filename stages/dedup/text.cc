#include "stages/dedup/text.h"

#include <utf8proc.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstring>
#include <stdexcept>

namespace sf::stages::dedup {
namespace {

// What the ASCII path emits for a byte: a character (>= 0x20), or one of these.
constexpr uint8_t kDrop = 0;   // nothing (removed punctuation)
constexpr uint8_t kBreak = 1;  // a word break (whitespace, controls, punctuation as space)

// One 128-entry map per (punctuation, fold_digits): letters lower-cased, digits kept or '0',
// controls (Cc) and ' ' (Zs) break words, the 32 characters of string.punctuation per mode.
struct AsciiMaps {
  uint8_t map[3][2][128];
  AsciiMaps() {
    for (int p = 0; p < 3; ++p)
      for (int d = 0; d < 2; ++d)
        for (int c = 0; c < 128; ++c) {
          uint8_t m;
          if (c >= 'a' && c <= 'z')
            m = static_cast<uint8_t>(c);
          else if (c >= 'A' && c <= 'Z')
            m = static_cast<uint8_t>(c + 32);
          else if (c >= '0' && c <= '9')
            m = d ? '0' : static_cast<uint8_t>(c);
          else if (c <= 0x20 || c == 0x7f)
            m = kBreak;
          else if (p == static_cast<int>(Punctuation::kKeep))
            m = static_cast<uint8_t>(c);
          else if (p == static_cast<int>(Punctuation::kSpace))
            m = kBreak;
          else
            m = kDrop;
          map[p][d][c] = m;
        }
  }
};
const AsciiMaps kMaps;

const uint8_t* ascii_map(const NormaliseOptions& options) {
  return kMaps.map[static_cast<int>(options.punctuation)][options.fold_digits ? 1 : 0];
}

bool is_ascii(std::string_view s) {
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t word;
    std::memcpy(&word, s.data() + i, 8);
    if (word & 0x8080808080808080ull) return false;
  }
  for (; i < s.size(); ++i)
    if (static_cast<unsigned char>(s[i]) & 0x80) return false;
  return true;
}

// Builds the output in place: words separated by single spaces; a space is only written
// before the next word, so there is none at either end.
class WordWriter {
 public:
  explicit WordWriter(std::string& out) : out_(out) {}
  ~WordWriter() { out_.resize(len_); }
  void space() { pending_ = len_ > 0; }
  // Room for n more bytes (and a pending space).
  char* reserve(size_t n) {
    if (out_.size() < len_ + n + 1) out_.resize(std::max(out_.size() * 2, len_ + n + 1));
    return out_.data() + len_;
  }
  void put(const char* s, size_t n) {
    char* o = reserve(n);
    if (pending_) {
      *o++ = ' ';
      ++len_;
      pending_ = false;
    }
    std::memcpy(o, s, n);
    len_ += n;
  }
  // The ASCII fast path: maps every byte of `text` (all < 0x80).
  void put_ascii(std::string_view text, const uint8_t* map) {
    char* const begin = reserve(text.size());
    char* o = begin;
    bool pending = pending_;
    const bool at_start = len_ == 0;
    for (const char ch : text) {
      const uint8_t m = map[static_cast<unsigned char>(ch)];
      if (m > kBreak) {
        if (pending) *o++ = ' ';
        pending = false;
        *o++ = static_cast<char>(m);
      } else if (m == kBreak) {
        pending = !(at_start && o == begin);
      }
    }
    pending_ = pending;
    len_ += static_cast<size_t>(o - begin);
  }

 private:
  std::string& out_;
  size_t len_ = 0;
  bool pending_ = false;
};

// utf8proc on one run of text that holds no ASCII whitespace or control: normalisation never
// crosses those (they are starters that compose with nothing and map to themselves).
void put_unicode(std::string_view text, const NormaliseOptions& options, const uint8_t* map,
                 WordWriter& w) {
  thread_local std::vector<utf8proc_int32_t> cps;
  const auto* src = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const auto len = static_cast<utf8proc_ssize_t>(text.size());
  auto flags = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_IGNORE);
  if (options.unicode)
    flags = static_cast<utf8proc_option_t>(flags | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |
                                           UTF8PROC_CASEFOLD);
  if (cps.size() < text.size() + 16) cps.resize(text.size() + 16);
  utf8proc_ssize_t n =
      utf8proc_decompose(src, len, cps.data(), static_cast<utf8proc_ssize_t>(cps.size()), flags);
  if (n > static_cast<utf8proc_ssize_t>(cps.size())) {
    cps.resize(static_cast<size_t>(n));
    n = utf8proc_decompose(src, len, cps.data(), n, flags);
  }
  if (n < 0) n = 0;  // invalid UTF-8: REQUIRES says it does not happen
  if (options.unicode) {
    n = utf8proc_normalize_utf32(cps.data(), n, flags);
    if (n < 0) n = 0;
  }
  utf8proc_uint8_t buf[4];
  for (utf8proc_ssize_t i = 0; i < n; ++i) {
    const utf8proc_int32_t cp = cps[static_cast<size_t>(i)];
    if (cp < 128) {
      const uint8_t m = map[cp];
      if (m == kBreak) {
        w.space();
      } else if (m != kDrop) {
        const char c = static_cast<char>(m);
        w.put(&c, 1);
      }
      continue;
    }
    switch (utf8proc_category(cp)) {
      case UTF8PROC_CATEGORY_ZS:
      case UTF8PROC_CATEGORY_ZL:
      case UTF8PROC_CATEGORY_ZP:
      case UTF8PROC_CATEGORY_CC:
        w.space();
        continue;
      case UTF8PROC_CATEGORY_PC:
      case UTF8PROC_CATEGORY_PD:
      case UTF8PROC_CATEGORY_PS:
      case UTF8PROC_CATEGORY_PE:
      case UTF8PROC_CATEGORY_PI:
      case UTF8PROC_CATEGORY_PF:
      case UTF8PROC_CATEGORY_PO:
      case UTF8PROC_CATEGORY_SM:
      case UTF8PROC_CATEGORY_SC:
      case UTF8PROC_CATEGORY_SK:
      case UTF8PROC_CATEGORY_SO:
        if (options.punctuation == Punctuation::kRemove) continue;
        if (options.punctuation == Punctuation::kSpace) {
          w.space();
          continue;
        }
        break;
      case UTF8PROC_CATEGORY_ND:
        if (options.fold_digits) {
          w.put("0", 1);
          continue;
        }
        break;
      default:
        break;
    }
    const utf8proc_ssize_t k = utf8proc_encode_char(cp, buf);
    w.put(reinterpret_cast<const char*>(buf), static_cast<size_t>(k));
  }
}

}  // namespace

Punctuation parse_punctuation(const std::string& name) {
  if (name == "remove") return Punctuation::kRemove;
  if (name == "space") return Punctuation::kSpace;
  if (name == "keep") return Punctuation::kKeep;
  throw std::invalid_argument("unknown punctuation mode '" + name + "' (remove, space, keep)");
}

void normalise_text(std::string_view text, const NormaliseOptions& options, std::string& out) {
  const uint8_t* map = ascii_map(options);
  WordWriter w(out);
  if (!options.ascii_fast_path) {
    put_unicode(text, options, map, w);
  } else if (is_ascii(text)) {
    w.put_ascii(text, map);
  } else {
    // Runs between ASCII whitespace/controls: ASCII runs take the fast path, the others
    // go through utf8proc; the breaks themselves are mapped by the ASCII path.
    size_t i = 0;
    while (i < text.size()) {
      size_t j = i;
      bool ascii = true;
      while (j < text.size()) {
        const auto c = static_cast<unsigned char>(text[j]);
        if (c <= 0x20 || c == 0x7f) break;
        ascii &= c < 0x80;
        ++j;
      }
      if (ascii)
        w.put_ascii(text.substr(i, j - i), map);
      else
        put_unicode(text.substr(i, j - i), options, map, w);
      if (j < text.size()) w.put_ascii(text.substr(j, 1), map);
      i = j + 1;
    }
  }
}

void shingle_hashes(std::string_view text, int ngram, std::vector<uint64_t>& out) {
  if (text.empty()) return;
  // Start offsets of the words; the text has single spaces and no space at either end.
  thread_local std::vector<uint32_t> starts;
  starts.clear();
  starts.push_back(0);
  const char* base = text.data();
  const char* p = base;
  const char* end = base + text.size();
  for (; p != end; ++p)  // words are short: a plain loop beats memchr
    if (*p == ' ') starts.push_back(static_cast<uint32_t>(p + 1 - base));
  const size_t words = starts.size();
  starts.push_back(static_cast<uint32_t>(text.size() + 1));  // sentinel: one past a space
  if (words < static_cast<size_t>(ngram)) {
    out.push_back(XXH3_64bits(base, text.size()));
    return;
  }
  const size_t n = static_cast<size_t>(ngram);
  for (size_t i = 0; i + n <= words; ++i) {
    const uint32_t b = starts[i], e = starts[i + n] - 1;
    out.push_back(XXH3_64bits(base + b, e - b));
  }
}

Hash128 exact_hash(std::string_view normalised) {
  const XXH128_hash_t h = XXH3_128bits(normalised.data(), normalised.size());
  return Hash128{h.low64, h.high64};
}

}  // namespace sf::stages::dedup
