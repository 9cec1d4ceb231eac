#include "io/jsonl_fields.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace sf::io {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view s) : p_(s.data()), end_(s.data() + s.size()) {}

  void skip_ws() {
    while (p_ < end_ && (*p_ == ' ' || *p_ == '\t' || *p_ == '\n' || *p_ == '\r')) ++p_;
  }
  bool at_end() const { return p_ == end_; }
  char peek() const { return p_ < end_ ? *p_ : '\0'; }
  bool eat(char c) {
    if (p_ < end_ && *p_ == c) {
      ++p_;
      return true;
    }
    return false;
  }
  const char* pos() const { return p_; }

  // A string starting at '"'; appends the decoded value to `out` when not null.
  bool string(std::string* out) {
    if (!eat('"')) return false;
    while (true) {
      const char* start = p_;
      while (p_ < end_ && *p_ != '"' && *p_ != '\\' && static_cast<unsigned char>(*p_) >= 0x20)
        ++p_;
      if (out) out->append(start, static_cast<size_t>(p_ - start));
      if (p_ == end_ || static_cast<unsigned char>(*p_) < 0x20) return false;
      if (*p_++ == '"') return true;
      if (p_ == end_) return false;
      const char e = *p_++;
      char c;
      switch (e) {
        case '"':
          c = '"';
          break;
        case '\\':
          c = '\\';
          break;
        case '/':
          c = '/';
          break;
        case 'b':
          c = '\b';
          break;
        case 'f':
          c = '\f';
          break;
        case 'n':
          c = '\n';
          break;
        case 'r':
          c = '\r';
          break;
        case 't':
          c = '\t';
          break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xDC00 && cp <= 0xDFFF) return false;  // a lone low surrogate
          if (cp >= 0xD800 && cp <= 0xDBFF) {
            uint32_t low;
            if (!(eat('\\') && eat('u') && hex4(low)) || low < 0xDC00 || low > 0xDFFF) return false;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          if (out) append_utf8(*out, cp);
          continue;
        }
        default:
          return false;
      }
      if (out) out->push_back(c);
    }
  }

  // A number as RFC 8259 writes it; false also when it overflows a double (nlohmann's rule).
  bool number() {
    const char* start = p_;
    eat('-');
    if (eat('0')) {
    } else if (p_ < end_ && *p_ >= '1' && *p_ <= '9') {
      while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    } else {
      return false;
    }
    bool integer = true;
    if (eat('.')) {
      integer = false;
      if (!digits()) return false;
    }
    if (p_ < end_ && (*p_ == 'e' || *p_ == 'E')) {
      integer = false;
      ++p_;
      if (!eat('+')) eat('-');
      if (!digits()) return false;
    }
    const size_t n = static_cast<size_t>(p_ - start);
    if (integer && n <= 18) return true;  // fits in 64 bits: nothing can overflow
    const std::string text(start, n);
    return std::isfinite(std::strtod(text.c_str(), nullptr));
  }

  bool literal(const char* word) {
    const size_t n = std::strlen(word);
    if (static_cast<size_t>(end_ - p_) < n || std::memcmp(p_, word, n) != 0) return false;
    p_ += n;
    return true;
  }

  // Any value, iteratively (a deeply nested line cannot overflow the stack).
  bool value() {
    std::vector<char> stack;  // '{' or '['
    while (true) {
      skip_ws();
      // One value.
      const char c = peek();
      if (c == '{' || c == '[') {
        ++p_;
        skip_ws();
        if (eat(c == '{' ? '}' : ']')) {
          // empty container: a complete value
        } else {
          stack.push_back(c);
          if (c == '{') {
            if (!member_key()) return false;
          }
          continue;
        }
      } else if (c == '"') {
        if (!string(nullptr)) return false;
      } else if (c == 't') {
        if (!literal("true")) return false;
      } else if (c == 'f') {
        if (!literal("false")) return false;
      } else if (c == 'n') {
        if (!literal("null")) return false;
      } else if (!number()) {
        return false;
      }
      // After a value: close containers or go on to the next element.
      while (true) {
        if (stack.empty()) return true;
        skip_ws();
        if (eat(',')) {
          if (stack.back() == '{' && !member_key()) return false;
          break;
        }
        if (!eat(stack.back() == '{' ? '}' : ']')) return false;
        stack.pop_back();
      }
    }
  }

 private:
  // `"key" :` inside an object.
  bool member_key() {
    skip_ws();
    if (!string(nullptr)) return false;
    skip_ws();
    return eat(':');
  }

  bool digits() {
    const char* start = p_;
    while (p_ < end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ > start;
  }

  bool hex4(uint32_t& out) {
    if (end_ - p_ < 4) return false;
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char h = *p_++;
      out <<= 4;
      if (h >= '0' && h <= '9')
        out |= static_cast<uint32_t>(h - '0');
      else if (h >= 'a' && h <= 'f')
        out |= static_cast<uint32_t>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F')
        out |= static_cast<uint32_t>(h - 'A' + 10);
      else
        return false;
    }
    return true;
  }

  static void append_utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    } else {
      out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
    }
  }

  const char* p_;
  const char* end_;
};

}  // namespace

JsonLineStatus parse_jsonl_fields(std::string_view line, JsonField* fields, int count) {
  for (int i = 0; i < count; ++i) {
    fields[i].found = false;
    fields[i].type = JsonField::kOther;
    fields[i].string.clear();
    fields[i].token = {};
  }
  Parser p(line);
  p.skip_ws();
  if (p.peek() != '{') {
    if (!p.value()) return JsonLineStatus::kInvalid;
    p.skip_ws();
    return p.at_end() ? JsonLineStatus::kNotObject : JsonLineStatus::kInvalid;
  }
  p.eat('{');
  p.skip_ws();
  std::string key;
  if (!p.eat('}')) {
    while (true) {
      p.skip_ws();
      key.clear();
      if (!p.string(&key)) return JsonLineStatus::kInvalid;
      p.skip_ws();
      if (!p.eat(':')) return JsonLineStatus::kInvalid;
      p.skip_ws();
      JsonField* want = nullptr;
      for (int i = 0; i < count; ++i)
        if (fields[i].name == key) want = &fields[i];  // names may repeat: the last request wins
      const char* start = p.pos();
      const char c = p.peek();
      if (want && c == '"') {
        want->string.clear();
        if (!p.string(&want->string)) return JsonLineStatus::kInvalid;
        want->type = JsonField::kString;
      } else {
        if (!p.value()) return JsonLineStatus::kInvalid;
        if (want)
          want->type =
              (c == '-' || (c >= '0' && c <= '9')) ? JsonField::kNumber : JsonField::kOther;
      }
      if (want) {
        want->found = true;
        want->token = std::string_view(start, static_cast<size_t>(p.pos() - start));
        // Several requests for one name all get the value.
        for (int i = 0; i < count; ++i)
          if (&fields[i] != want && fields[i].name == key) {
            fields[i].found = true;
            fields[i].type = want->type;
            fields[i].string = want->string;
            fields[i].token = want->token;
          }
      }
      p.skip_ws();
      if (p.eat(',')) continue;
      if (p.eat('}')) break;
      return JsonLineStatus::kInvalid;
    }
  }
  p.skip_ws();
  return p.at_end() ? JsonLineStatus::kObject : JsonLineStatus::kInvalid;
}

}  // namespace sf::io
