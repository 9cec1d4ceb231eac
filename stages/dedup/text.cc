#include "stages/dedup/text.h"

#include <utf8proc.h>
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstring>
#include <stdexcept>

namespace sf::stages::dedup {
namespace {

// Per ASCII byte: what normalisation does with it.
enum AsciiClass : uint8_t { kLetter, kUpper, kDigit, kSpace, kPunct, kOther };

struct AsciiTable {
  AsciiClass cls[128];
  AsciiTable() {
    for (int c = 0; c < 128; ++c) {
      if (c >= 'a' && c <= 'z') cls[c] = kLetter;
      else if (c >= 'A' && c <= 'Z') cls[c] = kUpper;
      else if (c >= '0' && c <= '9') cls[c] = kDigit;
      else if (c <= 0x20 || c == 0x7f) cls[c] = kSpace;  // controls (Cc) and ' ' (Zs)
      else cls[c] = kPunct;  // the 32 characters of string.punctuation
    }
  }
};
const AsciiTable kAscii;

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

// Writes words separated by single spaces: a space is only emitted before the next word.
class WordWriter {
 public:
  explicit WordWriter(std::string& out) : out_(out) { out_.clear(); }
  void space() { pending_ = !out_.empty(); }
  void put(char c) {
    if (pending_) {
      out_.push_back(' ');
      pending_ = false;
    }
    out_.push_back(c);
  }
  void put(const char* s, size_t n) {
    if (pending_) {
      out_.push_back(' ');
      pending_ = false;
    }
    out_.append(s, n);
  }

 private:
  std::string& out_;
  bool pending_ = false;
};

void normalise_ascii(std::string_view text, const NormaliseOptions& options, std::string& out) {
  out.reserve(text.size());
  WordWriter w(out);
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (kAscii.cls[c]) {
      case kLetter: w.put(ch); break;
      case kUpper: w.put(static_cast<char>(c + 32)); break;
      case kDigit: w.put(options.fold_digits ? '0' : ch); break;
      case kSpace: w.space(); break;
      case kPunct:
        if (options.punctuation == Punctuation::kKeep) w.put(ch);
        else if (options.punctuation == Punctuation::kSpace) w.space();
        break;
      default: break;
    }
  }
}

void normalise_unicode(std::string_view text, const NormaliseOptions& options, std::string& out) {
  thread_local std::vector<utf8proc_int32_t> cps;
  const auto* src = reinterpret_cast<const utf8proc_uint8_t*>(text.data());
  const auto len = static_cast<utf8proc_ssize_t>(text.size());
  auto flags = static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_IGNORE);
  if (options.unicode)
    flags = static_cast<utf8proc_option_t>(flags | UTF8PROC_COMPAT | UTF8PROC_COMPOSE |
                                           UTF8PROC_CASEFOLD);
  if (cps.size() < text.size() + 16) cps.resize(text.size() + 16);
  utf8proc_ssize_t n = utf8proc_decompose(src, len, cps.data(),
                                          static_cast<utf8proc_ssize_t>(cps.size()), flags);
  if (n > static_cast<utf8proc_ssize_t>(cps.size())) {
    cps.resize(static_cast<size_t>(n));
    n = utf8proc_decompose(src, len, cps.data(), n, flags);
  }
  if (n < 0) n = 0;  // invalid UTF-8: REQUIRES says it does not happen
  if (options.unicode) {
    n = utf8proc_normalize_utf32(cps.data(), n, flags);
    if (n < 0) n = 0;
  }
  out.reserve(text.size());
  WordWriter w(out);
  utf8proc_uint8_t buf[4];
  for (utf8proc_ssize_t i = 0; i < n; ++i) {
    utf8proc_int32_t cp = cps[static_cast<size_t>(i)];
    if (cp < 128) {
      const auto c = static_cast<unsigned char>(cp);
      switch (kAscii.cls[c]) {
        case kLetter: w.put(static_cast<char>(c)); break;
        case kUpper: w.put(static_cast<char>(c + 32)); break;  // when !unicode
        case kDigit: w.put(options.fold_digits ? '0' : static_cast<char>(c)); break;
        case kSpace: w.space(); break;
        case kPunct:
          if (options.punctuation == Punctuation::kKeep) w.put(static_cast<char>(c));
          else if (options.punctuation == Punctuation::kSpace) w.space();
          break;
        default: break;
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
          w.put('0');
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
  if (options.ascii_fast_path && is_ascii(text))
    normalise_ascii(text, options, out);
  else
    normalise_unicode(text, options, out);
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
  while ((p = static_cast<const char*>(std::memchr(p, ' ', static_cast<size_t>(end - p))))) {
    ++p;
    starts.push_back(static_cast<uint32_t>(p - base));
  }
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
