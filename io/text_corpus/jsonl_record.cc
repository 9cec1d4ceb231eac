#include "io/text_corpus/jsonl_record.h"

#include <cstdlib>
#include <limits>
#include <string>

namespace sf::io::text_detail {
namespace {

// `s` as a JSON string literal.
void append_json_string(std::string& out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out.push_back('"');
  for (const char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out.push_back(kHex[c >> 4]);
          out.push_back(kHex[c & 15]);
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

}  // namespace

bool is_blank(std::string_view s) {
  for (char c : s)
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '\f' && c != '\v') return false;
  return true;
}

bool parse_jsonl(std::string_view line, const TextReadOptions& options, JsonField* fields,
                 std::string& id, TextRecord& record, BadRecord& bad) {
  if (!valid_utf8(line)) {
    bad.kind = BadKind::kInvalidUtf8;
    bad.detail = "the line is not valid UTF-8";
    return false;
  }
  const int count = options.keep_field.empty() ? 2 : 3;
  const JsonLineStatus status = parse_jsonl_fields(line, fields, count);
  if (status != JsonLineStatus::kObject) {
    bad.kind = BadKind::kMalformedJson;
    bad.detail = is_blank(line)                       ? "blank line"
                 : status == JsonLineStatus::kInvalid ? "not valid JSON"
                                                      : "not a JSON object";
    return false;
  }
  const JsonField& t = fields[0];
  if (!t.found || t.type != JsonField::kString) {
    bad.kind = BadKind::kMissingText;
    bad.detail = !t.found ? "no field '" + options.text_field + "'"
                          : "field '" + options.text_field + "' is not a string";
    return false;
  }
  if (is_blank(t.string)) {
    bad.kind = BadKind::kEmptyText;
    bad.detail = "field '" + options.text_field + "' is empty";
    return false;
  }
  id.clear();
  const JsonField& i = fields[1];
  if (i.found) {
    if (i.type == JsonField::kString)
      append_json_string(id, i.string);
    else if (i.type == JsonField::kNumber)
      id.assign(i.token);
    else {
      bad.kind = BadKind::kBadId;
      bad.detail = "field '" + options.id_field + "' is neither a string nor a number";
      return false;
    }
  }
  record.keep_value = -std::numeric_limits<double>::infinity();
  if (count == 3 && fields[2].found && fields[2].type == JsonField::kNumber)
    record.keep_value = std::strtod(std::string(fields[2].token).c_str(), nullptr);
  record.raw = line;
  record.text = t.string;
  record.id = id;
  return true;
}

}  // namespace sf::io::text_detail
