// io/jsonl_fields: the dedup's JSONL field reader must accept exactly what nlohmann::json
// accepts and extract the same values (differential test on generated and mutated lines).
#include "io/jsonl_fields.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>
#include <random>
#include <string>

#include "io/text_corpus.h"

namespace sf::io {
namespace {

class Gen {
 public:
  explicit Gen(uint32_t seed) : rng_(seed) {}
  int pick(int n) { return static_cast<int>(rng_() % static_cast<uint32_t>(n)); }

  std::string ws() {
    static const char* kWs[] = {"", "", "", " ", "\t", "  ", "\r\n", "\n"};
    return kWs[pick(8)];
  }
  std::string string() {
    static const char* kPieces[] = {
        "a",   "Z",       " ",       "text",           "\\\"",    "\\\\",   "\\/",    "\\n",
        "\\t", "\\u0041", "\\u00e9", "\\uD83D\\uDE00", "\\u0000", "\u00e9", "\u6f22", "\\b",
        "\\f", "\\r",     "x y"};
    std::string s = "\"";
    const int n = pick(6);
    for (int i = 0; i < n; ++i) s += kPieces[pick(19)];
    return s + "\"";
  }
  std::string number() {
    static const char* kNumbers[] = {"0",
                                     "-0",
                                     "7",
                                     "-12",
                                     "3.25",
                                     "1e5",
                                     "1E-3",
                                     "-2.5e+2",
                                     "123456789012345678",
                                     "12345678901234567890123",
                                     "1e308",
                                     "1e400",
                                     "-1e-400",
                                     "0.000001",
                                     "99999999999999999999e300"};
    return kNumbers[pick(15)];
  }
  std::string value(int depth) {
    const int kind = depth > 3 ? pick(5) : pick(7);
    switch (kind) {
      case 0:
        return string();
      case 1:
        return number();
      case 2:
        return "true";
      case 3:
        return "false";
      case 4:
        return "null";
      case 5:
        return object(depth + 1);
      default: {
        std::string s = "[" + ws();
        const int n = pick(4);
        for (int i = 0; i < n; ++i) s += (i ? "," + ws() : "") + value(depth + 1) + ws();
        return s + "]";
      }
    }
  }
  std::string object(int depth) {
    static const char* kKeys[] = {"\"text\"", "\"id\"",         "\"n\"",
                                  "\"meta\"", "\"te\\u0078t\"", "\"\""};
    std::string s = "{" + ws();
    const int n = pick(5);
    for (int i = 0; i < n; ++i)
      s += (i ? "," + ws() : "") + kKeys[pick(6)] + ws() + ":" + ws() + value(depth) + ws();
    return s + "}";
  }
  std::string mutate(std::string s) {
    static const char kChars[] = "{}[]\":,\\ 0123456789.eE+-tfnulx";
    const int edits = 1 + pick(3);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const size_t at = static_cast<size_t>(pick(static_cast<int>(s.size())));
      switch (pick(4)) {
        case 0:
          s.erase(at, 1);
          break;
        case 1:
          s.insert(at, 1, kChars[pick(sizeof(kChars) - 1)]);
          break;
        case 2:
          s[at] = kChars[pick(sizeof(kChars) - 1)];
          break;
        default:
          s.resize(at);
          break;
      }
    }
    return s;
  }

 private:
  std::mt19937 rng_;
};

TEST(JsonlFields, AgreesWithNlohmann) {
  Gen gen(42);
  int objects = 0, invalid = 0, not_object = 0;
  for (int round = 0; round < 40000; ++round) {
    std::string line = gen.pick(5) == 0 ? gen.value(0) : gen.ws() + gen.object(0) + gen.ws();
    if (gen.pick(2) == 0) line = gen.mutate(line);
    if (!valid_utf8(line)) continue;
    JsonField fields[3];
    fields[0].name = "text";
    fields[1].name = "id";
    fields[2].name = "n";
    const JsonLineStatus got = parse_jsonl_fields(line, fields, 3);
    const nlohmann::json doc = nlohmann::json::parse(line, nullptr, false);
    if (doc.is_discarded()) {
      ASSERT_EQ(got, JsonLineStatus::kInvalid) << line;
      ++invalid;
      continue;
    }
    if (!doc.is_object()) {
      ASSERT_EQ(got, JsonLineStatus::kNotObject) << line;
      ++not_object;
      continue;
    }
    ASSERT_EQ(got, JsonLineStatus::kObject) << line;
    ++objects;
    for (const JsonField& f : fields) {
      const auto it = doc.find(std::string(f.name));
      ASSERT_EQ(f.found, it != doc.end()) << line << " field " << f.name;
      if (!f.found) continue;
      if (it->is_string()) {
        ASSERT_EQ(f.type, JsonField::kString) << line;
        ASSERT_EQ(f.string, it->get<std::string>()) << line;
      } else if (it->is_number()) {
        ASSERT_EQ(f.type, JsonField::kNumber) << line;
        ASSERT_EQ(std::strtod(std::string(f.token).c_str(), nullptr), it->get<double>()) << line;
        ASSERT_EQ(nlohmann::json::parse(f.token), *it) << line;
      } else {
        ASSERT_EQ(f.type, JsonField::kOther) << line;
        ASSERT_EQ(nlohmann::json::parse(f.token), *it) << line;
      }
    }
  }
  // The generator reaches every outcome often.
  EXPECT_GT(objects, 5000);
  EXPECT_GT(invalid, 5000);
  EXPECT_GT(not_object, 1000);
}

TEST(JsonlFields, DeepNestingDoesNotRecurse) {
  const std::string deep =
      "{\"text\": \"t\", \"x\": " + std::string(200000, '[') + std::string(200000, ']') + "}";
  JsonField f[1];
  f[0].name = "text";
  EXPECT_EQ(parse_jsonl_fields(deep, f, 1), JsonLineStatus::kObject);
  EXPECT_EQ(f[0].string, "t");
  EXPECT_EQ(parse_jsonl_fields(deep.substr(0, deep.size() - 2), f, 1), JsonLineStatus::kInvalid);
}

}  // namespace
}  // namespace sf::io
