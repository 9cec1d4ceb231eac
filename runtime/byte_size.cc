// Byte sizes in config values and messages (runtime/config.h).
#include <cctype>
#include <cmath>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <string_view>

#include "runtime/config.h"

namespace sf::runtime {
namespace {

struct Unit {
  std::string_view name;
  double factor;
};

constexpr double kKi = 1024.0;
constexpr Unit kUnits[] = {
    {"", 1},          {"B", 1},
    {"K", kKi},       {"KiB", kKi},      {"KB", 1e3},
    {"M", kKi * kKi}, {"MiB", kKi * kKi}, {"MB", 1e6},
    {"G", kKi * kKi * kKi}, {"GiB", kKi * kKi * kKi}, {"GB", 1e9},
    {"T", kKi * kKi * kKi * kKi}, {"TiB", kKi * kKi * kKi * kKi}, {"TB", 1e12},
};

}  // namespace

ByteSize parse_byte_size(std::string_view text) {
  const std::string whole(text);
  size_t end = 0;
  while (end < text.size() && (std::isdigit(static_cast<unsigned char>(text[end])) || text[end] == '.'))
    ++end;
  if (end == 0) throw std::invalid_argument("expected a size such as 512MiB or 2GiB, got '" + whole + "'");
  std::string_view unit = text.substr(end);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  const std::string number(text.substr(0, end));
  for (const Unit& u : kUnits) {
    if (u.name != unit) continue;
    if (u.factor == 1 && number.find('.') != std::string::npos)
      throw std::invalid_argument("a size in bytes is a whole number, got '" + whole + "'");
    if (u.factor == 1) {
      try {
        size_t used = 0;
        const unsigned long long bytes = std::stoull(number, &used);
        if (used == number.size()) return ByteSize{bytes};
      } catch (const std::out_of_range&) {
        throw std::invalid_argument("size out of range, got '" + whole + "'");
      } catch (const std::invalid_argument&) {
      }
      throw std::invalid_argument("expected a size such as 512MiB or 2GiB, got '" + whole + "'");
    }
    size_t used = 0;
    double value = 0;
    try {
      value = std::stod(number, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != number.size())
      throw std::invalid_argument("expected a size such as 512MiB or 2GiB, got '" + whole + "'");
    const double bytes = std::round(value * u.factor);
    if (!(bytes < 18446744073709551616.0))
      throw std::invalid_argument("size out of range, got '" + whole + "'");
    return ByteSize{static_cast<uint64_t>(bytes)};
  }
  throw std::invalid_argument("unknown unit '" + std::string(unit) + "' in '" + whole +
                              "' (B, KiB, MiB, GiB, TiB; K/M/G/T are the same; KB/MB/GB/TB "
                              "are powers of 1000)");
}

std::string format_byte_size(ByteSize size) {
  static constexpr const char* kBinary[] = {"TiB", "GiB", "MiB", "KiB"};
  if (size.bytes == 0) return "0";
  for (int i = 0; i < 4; ++i) {
    const uint64_t factor = uint64_t{1} << (10 * (4 - i));
    if (size.bytes % factor == 0) return std::to_string(size.bytes / factor) + kBinary[i];
  }
  return std::to_string(size.bytes);
}

std::string human_bytes(uint64_t bytes) {
  static constexpr const char* kUnitNames[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 5) {
    value /= 1024;
    ++unit;
  }
  char text[32];
  if (unit == 0) {
    std::snprintf(text, sizeof(text), "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(text, sizeof(text), value >= 100 ? "%.0f %s" : value >= 10 ? "%.1f %s" : "%.2f %s",
                  value, kUnitNames[unit]);
  }
  return text;
}

}  // namespace sf::runtime
