// Publishing files so that a reader never sees a half-written one: write to a temporary
// name in the same directory, flush to disk, rename over the final name.
#pragma once

#include <functional>
#include <string>

namespace sf::io {

// Calls write(tmp_path), fsyncs tmp_path, renames it to `path`. On any failure (write throws,
// fsync or rename fails) removes tmp_path and throws std::runtime_error naming `path`.
void publish_file(const std::string& path, const std::function<void(const std::string&)>& write);

// publish_file() for text content.
void publish_text(const std::string& path, const std::string& text);

}  // namespace sf::io
