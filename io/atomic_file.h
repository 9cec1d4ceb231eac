// Publishing files so that a reader never sees a half-written one: write to a temporary
// name in the same directory, flush to disk, rename over the final name.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

namespace sf::io {

// Calls write(tmp_path), fsyncs tmp_path, renames it to `path`, fsyncs the directory. On any
// failure (write throws, fsync or rename fails) removes tmp_path and throws
// std::runtime_error naming `path`.
void publish_file(const std::string& path, const std::function<void(const std::string&)>& write);

// publish_file() for text content.
void publish_text(const std::string& path, const std::string& text);
// publish_file() for bytes in memory.
void publish_bytes(const std::string& path, const void* data, size_t bytes);

}  // namespace sf::io
