// A validating one-pass reader of one JSONL line that extracts only the fields the dedup
// needs (the text, the id, the keep field) without building a document. It accepts exactly
// what nlohmann::json::parse accepts (RFC 8259: one value, no trailing content; numbers that
// overflow a double are errors, as there) -- tests/unit/jsonl_fields_test.cc checks this
// against nlohmann on generated and mutated lines. No MPI, no state: thread-safe.
#pragma once

#include <string>
#include <string_view>

namespace sf::io {

// One requested top-level field of an object.
struct JsonField {
  std::string_view name;
  bool found = false;
  enum Type { kString, kNumber, kOther } type = kOther;
  std::string string;      // kString: the decoded value
  std::string_view token;  // the value's text in the line (kNumber: the number as written)
};

enum class JsonLineStatus { kObject, kNotObject, kInvalid };

// Parses `line` (REQUIRES: valid UTF-8) as one JSON value. kObject: fields holds every
// requested top-level member (the last one when a key repeats, as nlohmann); kNotObject: valid
// JSON but not an object; kInvalid: not JSON. `fields` points to `count` requests.
JsonLineStatus parse_jsonl_fields(std::string_view line, JsonField* fields, int count);

}  // namespace sf::io
