// Thread count used by normnet's kernels and oneDNN primitives.
#pragma once

namespace normnet {

// Sets how many threads kernels use (>= 1). The default is the NORMNET_NUM_THREADS environment
// variable when set, otherwise every core the process may use.
void set_num_threads(int n);
[[nodiscard]] int get_num_threads();

}  // namespace normnet
