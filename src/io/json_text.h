// Parsing JSON text from untrusted sources (file headers, model configs) with a nesting bound
// checked before the parser runs.
#pragma once

#include <string>
#include <string_view>

#include "normnet/config.h"

namespace normnet::io {

// Deepest nesting of arrays and objects accepted in a file's JSON (a model config nests about 4
// levels per nested model).
inline constexpr int kMaxJsonDepth = 64;

// Parses `text` into `out`. Returns "" on success, otherwise what is wrong ("nesting deeper than
// 64 levels at byte 812", "syntax error at byte 17: ..."); never throws on bad text.
[[nodiscard]] std::string parse_json_bounded(std::string_view text, int max_depth, Config& out);

}  // namespace normnet::io
