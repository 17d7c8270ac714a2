// write_file_atomically: temp file + fsync + rename + directory fsync (POSIX), and the sweep of
// temporaries that killed writers left behind.
#include "io/atomic_file.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "normnet/error.h"

namespace normnet::io {

using detail::str;
namespace fs = std::filesystem;

namespace {

std::string reason() { return std::strerror(errno); }

// "<dir>/.<name>.tmp-" : the prefix every temporary of `path` starts with.
std::string temp_prefix(const fs::path& target) {
  std::string prefix(1, '.');  // built by appending: g++ 12 warns falsely on "." + string (PR 105329)
  prefix.append(target.filename().string()).append(".tmp-");
  return prefix;
}

fs::path directory_of(const fs::path& target) {
  return target.has_parent_path() ? target.parent_path() : fs::path(".");
}

// The writer's pid in a temporary's name ("<prefix><pid>-<n>"), or -1.
long pid_in(const std::string& name, const std::string& prefix) {
  const std::string rest = name.substr(prefix.size());
  const std::size_t dash = rest.find('-');
  if (dash == 0 || dash == std::string::npos || rest.find_first_not_of("0123456789") != dash) return -1;
  try {
    return std::stol(rest.substr(0, dash));
  } catch (const std::exception&) {
    return -1;
  }
}

// Removes temporaries of `target` whose writer no longer runs (best effort, errors ignored).
void sweep_dead_temporaries(const fs::path& target) {
  const std::string prefix = temp_prefix(target);
  std::error_code ec;
  for (fs::directory_iterator it(directory_of(target), ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const long pid = pid_in(name, prefix);
    if (pid <= 0 || pid == static_cast<long>(getpid())) continue;
    if (kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) {
      std::error_code ignored;
      fs::remove(it->path(), ignored);
    }
  }
}

// 0 on success, else the errno of the failed write.
int write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// Closes the descriptor and removes the temporary unless released (after the rename).
class TempFile {
 public:
  TempFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  int fd() const { return fd_; }
  int close() {
    const int rc = ::close(fd_);
    fd_ = -1;
    return rc;
  }
  void release() { path_.clear(); }

 private:
  std::string path_;
  int fd_;
};

}  // namespace

void write_file_atomically(const std::string& path, const std::vector<std::string_view>& parts) {
  static std::atomic<unsigned long> counter{0};
  const fs::path target(path);
  if (target.filename().empty()) throw IoError(str(path, ": not a file path"));
  sweep_dead_temporaries(target);
  const fs::path dir = directory_of(target);
  const std::string temp =
      (dir / (temp_prefix(target) + std::to_string(getpid()) + "-" + std::to_string(counter++))).string();
  const int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
  if (fd < 0) throw IoError(str(path, ": cannot create the temporary file '", temp, "': ", reason()));
  TempFile file(temp, fd);
  for (std::string_view part : parts) {
    if (const int err = write_all(file.fd(), part); err != 0) {
      throw IoError(str(path, ": cannot write the temporary file '", temp, "': ", std::strerror(err)));
    }
  }
  if (::fsync(file.fd()) != 0) throw IoError(str(path, ": fsync of the temporary file failed: ", reason()));
  if (file.close() != 0) throw IoError(str(path, ": closing the temporary file failed: ", reason()));
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    throw IoError(str(path, ": cannot rename the temporary file into place: ", reason()));
  }
  file.release();
  // The rename is durable only once the directory entry is on disk.
  const int dir_fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) throw IoError(str(path, ": cannot open its directory to fsync it: ", reason()));
  const int rc = ::fsync(dir_fd);
  const int err = errno;
  ::close(dir_fd);
  // Some filesystems cannot fsync a directory (EINVAL, ENOTSUP); the rename has happened then,
  // and nothing more can be done for durability, as SQLite and others also accept.
  if (rc != 0 && err != EINVAL && err != ENOTSUP) {
    throw IoError(str(path, ": fsync of its directory failed: ", std::strerror(err)));
  }
}

std::vector<std::string> temp_files_of(const std::string& path) {
  const fs::path target(path);
  const std::string prefix = temp_prefix(target);
  std::vector<std::string> out;
  std::error_code ec;
  for (fs::directory_iterator it(directory_of(target), ec), end; !ec && it != end; it.increment(ec)) {
    if (it->path().filename().string().rfind(prefix, 0) == 0) out.push_back(it->path().string());
  }
  return out;
}

}  // namespace normnet::io
