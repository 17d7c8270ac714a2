// normnet's ops::l2_normalize beside libtorch's torch::nn::functional::normalize, forward and
// forward+backward, same shapes, same data, same thread count, timed alternately in one run
// (median of many repetitions); then the values of EpsilonMode::kPyTorch against torch's own.
//   NORMNET_NUM_THREADS=2 build/bench/peer_l2_normalize_torch
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "normnet/normnet.h"

namespace {

using normnet::L2NormalizeOptions;
using normnet::Shape;
using normnet::Tensor;
namespace F = torch::nn::functional;

double seconds_of(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Times a and b alternately (so that load on the machine hits both alike); medians in µs.
std::pair<double, double> time_pair(const std::function<void()>& a, const std::function<void()>& b,
                                    int reps) {
  for (int i = 0; i < 5; ++i) a(), b();
  std::vector<double> ta, tb;
  for (int i = 0; i < reps; ++i) {
    ta.push_back(seconds_of(a));
    tb.push_back(seconds_of(b));
  }
  return {median(ta) * 1e6, median(tb) * 1e6};
}

torch::Tensor to_torch(const Tensor& t) {
  std::vector<int64_t> sizes(t.shape().begin(), t.shape().end());
  return torch::from_blob(const_cast<float*>(t.data<float>()), sizes, torch::kFloat32).clone();
}

std::string shape_name(const Shape& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) out += (i ? "x" : "") + std::to_string(s[i]);
  return out;
}

void time_shapes() {
  std::printf(
      "| shape (axis -1) | normnet fwd µs | torch fwd µs | torch/normnet | normnet fwd+bwd µs | "
      "torch fwd+bwd µs | torch/normnet |\n|---|---|---|---|---|---|---|\n");
  for (const Shape& shape : {Shape{256, 128}, Shape{4096, 512}, Shape{32, 56, 56, 64}}) {
    const int64_t n = normnet::shape_numel(shape);
    const int reps = n < 100000 ? 2000 : (n < 4000000 ? 200 : 60);
    Tensor x = Tensor::randn(shape, 1);
    const Tensor dy = Tensor::randn(shape, 2);
    const torch::Tensor xt = to_torch(x), dyt = to_torch(dy);
    const auto opts = F::NormalizeFuncOptions().p(2).dim(-1).eps(1e-12);

    const auto [nf, tf] = time_pair([&] { (void)normnet::ops::l2_normalize(x); },
                                    [&] {
                                      torch::NoGradGuard no_grad;
                                      (void)F::normalize(xt, opts);
                                    },
                                    reps);
    x.set_requires_grad(true);
    torch::Tensor xg = xt.clone().set_requires_grad(true);
    const auto [nb, tb] = time_pair(
        [&] {
          normnet::ops::l2_normalize(x).backward(dy);
          x.zero_grad();
        },
        [&] {
          F::normalize(xg, opts).backward(dyt);
          xg.mutable_grad().reset();
        },
        reps);
    std::printf("| %s | %.1f | %.1f | %.2f | %.1f | %.1f | %.2f |\n", shape_name(shape).c_str(), nf, tf,
                tf / nf, nb, tb, tb / nb);
  }
}

// Rows of 16 float32 values at one scale: max |normnet kPyTorch − torch| of y and of the gradient,
// and ‖y‖ of torch, of normnet's kPyTorch and of normnet's kExact.
void compare_values() {
  std::printf(
      "\n| row scale | max abs diff y (pytorch mode vs torch) | max abs diff grad | ‖y‖ torch | "
      "‖y‖ normnet pytorch | ‖y‖ normnet exact |\n|---|---|---|---|---|---|\n");
  for (double scale : {1.0, 1e-7, 1e-20, 1e-40, 1e20, 1e37, 0.0}) {
    Tensor x = (Tensor::randn({1, 16}, 3) * scale).detach().set_requires_grad(true);
    const Tensor dy = Tensor::randn({1, 16}, 4);
    torch::Tensor xt = to_torch(x.detach()).set_requires_grad(true);
    torch::Tensor yt = F::normalize(xt, F::NormalizeFuncOptions().p(2).dim(-1).eps(1e-12));
    yt.backward(to_torch(dy));
    const Tensor y = normnet::ops::l2_normalize(x, L2NormalizeOptions().mode(normnet::EpsilonMode::kPyTorch));
    y.backward(dy);
    const auto vy = y.to_vector<float>(), vg = x.grad().to_vector<float>();
    const auto ye = normnet::ops::l2_normalize(x.detach()).to_vector<float>();
    const float* pt = yt.data_ptr<float>();
    const float* gt = xt.grad().data_ptr<float>();
    double dy_max = 0, dg_max = 0, nt = 0, nn = 0, ne = 0;
    for (int j = 0; j < 16; ++j) {
      dy_max = std::max(dy_max, std::abs(static_cast<double>(vy[j]) - pt[j]));
      dg_max = std::max(dg_max, std::abs(static_cast<double>(vg[j]) - gt[j]));
      nt += static_cast<double>(pt[j]) * pt[j];
      nn += static_cast<double>(vy[j]) * vy[j];
      ne += static_cast<double>(ye[j]) * ye[j];
    }
    std::printf("| %g | %.3g | %.3g | %.7g | %.7g | %.7g |\n", scale, dy_max, dg_max, std::sqrt(nt),
                std::sqrt(nn), std::sqrt(ne));
  }
}

}  // namespace

int main() {
  const int threads = normnet::get_num_threads();
  torch::set_num_threads(threads);
  std::printf("l2_normalize: normnet vs libtorch %s, %d thread(s), float32, medians\n\n", TORCH_VERSION,
              threads);
  time_shapes();
  compare_values();
  return 0;
}
