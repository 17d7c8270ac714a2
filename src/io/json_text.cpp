// Bounded JSON parsing: a scan for the nesting depth (outside strings), then nlohmann's parser
// without exceptions.
#include "io/json_text.h"

#include "normnet/error.h"

namespace normnet::io {

using detail::str;

namespace {

// The byte offset where nesting first exceeds `max_depth`, or npos.
std::size_t too_deep_at(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;  // skips the escaped character
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) return i;
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
  return std::string_view::npos;
}

}  // namespace

std::string parse_json_bounded(std::string_view text, int max_depth, Config& out) {
  if (const std::size_t at = too_deep_at(text, max_depth); at != std::string_view::npos) {
    return str("JSON nesting deeper than ", max_depth, " levels at byte ", at);
  }
  try {
    out = Config::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    return str("invalid JSON: ", e.what());
  }
  return "";
}

}  // namespace normnet::io
