// Thread count for OpenMP kernels and oneDNN (which runs on the same OpenMP runtime).
#include "normnet/threading.h"

#include <omp.h>

#include <atomic>
#include <cstdlib>
#include <string>

#include "normnet/error.h"

namespace normnet {
namespace {

int initial_threads() {
  if (const char* env = std::getenv("NORMNET_NUM_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1) return static_cast<int>(n);
  }
  return omp_get_num_procs();
}

std::atomic<int>& thread_count() {
  static std::atomic<int> count{[] {
    const int n = initial_threads();
    omp_set_num_threads(n);
    return n;
  }()};
  return count;
}

}  // namespace

void set_num_threads(int n) {
  if (n < 1) throw ValueError(detail::str("set_num_threads: expected n >= 1, got ", n));
  thread_count().store(n);
  omp_set_num_threads(n);
}

int get_num_threads() { return thread_count().load(); }

}  // namespace normnet
