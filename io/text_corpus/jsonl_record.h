// One JSONL record for io/text_corpus: its text, id and keep field, or why it is bad. Not for
// callers, who include io/text_corpus.h.
#pragma once

#include <string>
#include <string_view>

#include "io/jsonl_fields.h"
#include "io/text_corpus.h"

namespace sf::io::text_detail {

// True when `s` holds only ASCII whitespace (or nothing).
bool is_blank(std::string_view s);

// Parses one JSONL line into `record`; returns false (and fills `bad`) when it is bad.
// `fields` holds the requests: [0] text, [1] id, [2] keep field (when options name one).
bool parse_jsonl(std::string_view line, const TextReadOptions& options, JsonField* fields,
                 std::string& id, TextRecord& record, BadRecord& bad);

}  // namespace sf::io::text_detail
