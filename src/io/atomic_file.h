// Crash-safe file replacement: write a temporary file beside the target, fsync it, rename it
// over the target, fsync the directory. A crash at any moment leaves the old file or the new one.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace normnet::io {

// Writes the concatenation of `parts` to `path` atomically. The temporary file is
// "<dir>/.<name>.tmp-<pid>-<n>"; it is removed on any error, and temporaries left by writers
// that died (their pid no longer runs) are swept before each write. Throws IoError naming the
// path, the step that failed and the system's reason.
void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts);

// Temporary files of `path` now present in its directory (left by killed writers, or being
// written), as full paths.
[[nodiscard]] std::vector<std::string> temp_files_of(const std::string& path);

}  // namespace normnet::io
