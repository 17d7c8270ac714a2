// A consumer of normnet: normalizes (3, 4)·1e-30, whose squares underflow float32, and checks that
// the result is (0.6, 0.8). Built by both consumer projects (add_subdirectory and find_package).
#include <cmath>
#include <cstdio>
#include <vector>

#include <normnet/normnet.h>

int main() {
  using namespace normnet;
  const Tensor x = Tensor::from_vector(std::vector<float>{3e-30f, 4e-30f}, {1, 2});
  const std::vector<float> y = ops::l2_normalize(x).to_vector<float>();
  const bool ok = y.size() == 2 && std::abs(y[0] - 0.6f) < 1e-6f && std::abs(y[1] - 0.8f) < 1e-6f;
  if (!ok) {
    std::fprintf(stderr, "consumer: l2_normalize((3e-30, 4e-30)) gave (%g, %g), expected (0.6, 0.8)\n",
                 y.empty() ? 0.0 : y[0], y.size() < 2 ? 0.0 : y[1]);
    return 1;
  }
  std::printf("consumer: l2_normalize((3e-30, 4e-30)) = (%g, %g)\n", y[0], y[1]);
  return 0;
}
