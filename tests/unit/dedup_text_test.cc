// Normalisation, shingles and the exact hash of the dedup.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "stages/dedup/text.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace sf::stages::dedup {
namespace {

std::string norm(const std::string& text, NormaliseOptions options = {}) {
  std::string out;
  normalise_text(text, options, out);
  return out;
}

TEST(Normalise, CaseWhitespaceAndPunctuation) {
  EXPECT_EQ(norm("  Hello,\tWORLD!\n\n It's  me...  "), "hello world its me");
  NormaliseOptions space;
  space.punctuation = Punctuation::kSpace;
  EXPECT_EQ(norm("It's a well-known fact.", space), "it s a well known fact");
  NormaliseOptions keep;
  keep.punctuation = Punctuation::kKeep;
  EXPECT_EQ(norm("It's  A fact.", keep), "it's a fact.");
  EXPECT_EQ(norm(" ,;: "), "");
  EXPECT_EQ(norm(""), "");
}

TEST(Normalise, DigitsFoldedOnlyWhenAsked) {
  EXPECT_EQ(norm("Room 101, floor 7"), "room 101 floor 7");
  NormaliseOptions digits;
  digits.fold_digits = true;
  EXPECT_EQ(norm("Room 101, floor 7", digits), "room 000 floor 0");
  EXPECT_EQ(norm("\u0661\u0662 x", digits), "00 x");  // Arabic-Indic digits are Nd
}

TEST(Normalise, UnicodeNfkcCaseFoldAndSpaces) {
  // Fullwidth letters (NFKC), the fi ligature (NFKC), sharp s and Greek sigma (case folding),
  // a no-break space and an ideographic space (Zs), a soft hyphen (ignorable), curly quotes
  // and an em dash (punctuation).
  EXPECT_EQ(norm("\uFF28\uFF49 \uFB01ne Stra\u00DFe\u00A0\u03A3\u0391\u3000co\u00ADop"),
            "hi fine strasse σα coop");
  EXPECT_EQ(norm("\u201CQuoted\u201D \u2014 text"), "quoted text");
  // Composed and decomposed forms normalise alike.
  EXPECT_EQ(norm("Caf\u00E9"), norm("Cafe\u0301"));
  EXPECT_EQ(norm("Caf\u00E9"), "caf\u00E9");
}

// The ASCII fast path gives exactly what the utf8proc path gives.
TEST(Normalise, AsciiFastPathMatchesUnicodePath) {
  std::mt19937 rng(11);
  for (int round = 0; round < 2000; ++round) {
    std::string text(rng() % 60, ' ');
    for (char& c : text) c = static_cast<char>(rng() % 128);
    for (Punctuation p : {Punctuation::kRemove, Punctuation::kSpace, Punctuation::kKeep}) {
      for (bool digits : {false, true}) {
        NormaliseOptions fast, slow;
        fast.punctuation = slow.punctuation = p;
        fast.fold_digits = slow.fold_digits = digits;
        slow.ascii_fast_path = false;
        ASSERT_EQ(norm(text, fast), norm(text, slow)) << "text: " << text;
      }
    }
  }
}

// Mixed text: runs between ASCII whitespace go through utf8proc one by one; the result must
// be what utf8proc gives for the whole text.
TEST(Normalise, RunByRunMatchesWholeTextUnicodePath) {
  const std::vector<std::string> pieces = {
      "a",      "B",      "7",      " ",          "\t",     "\n",     ",",
      "'",      "-",      "\u00e9", "e\u0301",    "\u0301", "\u00a0", "\u3000",
      "\uFB01", "\uFF21", "\u00DF", "\u03A3",     "\u00AD", "\u201C", "\u2014",
      "\u0663", "\u00BD", "\u6F22", "\U0001F600", "\u212B", "\u1E9E", "\uFDFA"};
  std::mt19937 rng(5);
  for (int round = 0; round < 3000; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 30);
    for (int k = 0; k < n; ++k) text += pieces[rng() % pieces.size()];
    for (Punctuation p : {Punctuation::kRemove, Punctuation::kSpace, Punctuation::kKeep}) {
      NormaliseOptions fast, slow;
      fast.punctuation = slow.punctuation = p;
      fast.fold_digits = slow.fold_digits = (round % 2) == 1;
      slow.ascii_fast_path = false;
      ASSERT_EQ(norm(text, fast), norm(text, slow)) << "text: " << text;
    }
  }
}

TEST(Shingles, WordNgramsHashedAsSubstrings) {
  std::vector<uint64_t> out;
  shingle_hashes("a bb ccc dd e", 3, out);
  const std::vector<uint64_t> expected = {XXH3_64bits("a bb ccc", 8), XXH3_64bits("bb ccc dd", 9),
                                          XXH3_64bits("ccc dd e", 8)};
  EXPECT_EQ(out, expected);
  out.clear();
  shingle_hashes("short text", 5, out);  // fewer words than n: one shingle of all of them
  EXPECT_EQ(out, std::vector<uint64_t>{XXH3_64bits("short text", 10)});
  out.clear();
  shingle_hashes("", 5, out);
  EXPECT_TRUE(out.empty());
  shingle_hashes("one two", 1, out);
  EXPECT_EQ(out, (std::vector<uint64_t>{XXH3_64bits("one", 3), XXH3_64bits("two", 3)}));
}

TEST(ExactHash, EqualForEqualNormalisedTextOnly) {
  const Hash128 a = exact_hash(norm("The  quick, brown fox!")),
                b = exact_hash(norm("the quick brown FOX"));
  const Hash128 c = exact_hash(norm("the quick brown fix"));
  EXPECT_TRUE(a.lo == b.lo && a.hi == b.hi);
  EXPECT_FALSE(a.lo == c.lo && a.hi == c.hi);
  const XXH128_hash_t h = XXH3_128bits("abc", 3);
  EXPECT_EQ(exact_hash("abc").lo, h.low64);
  EXPECT_EQ(exact_hash("abc").hi, h.high64);
}

}  // namespace
}  // namespace sf::stages::dedup
