// ops::l2_normalize: axis rules, the (outer, reduced, inner) plan, forward and backward side by side.
#include "normnet/ops/l2_normalize.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/l2_normalize.h"
#include "ops/op_util.h"

namespace normnet {

const char* epsilon_mode_name(EpsilonMode mode) {
  switch (mode) {
    case EpsilonMode::kExact:
      return "exact";
    case EpsilonMode::kTensorFlow:
      return "tensorflow";
    case EpsilonMode::kPyTorch:
      return "pytorch";
    case EpsilonMode::kAdditive:
      return "additive";
  }
  return "unknown";
}

EpsilonMode epsilon_mode_from_name(const std::string& name) {
  for (EpsilonMode mode :
       {EpsilonMode::kExact, EpsilonMode::kTensorFlow, EpsilonMode::kPyTorch, EpsilonMode::kAdditive}) {
    if (name == epsilon_mode_name(mode)) return mode;
  }
  throw ValueError(detail::str("epsilon_mode_from_name: unknown epsilon mode '", name,
                               "' (expected exact, tensorflow, pytorch or additive)"));
}

namespace ops {
namespace {

constexpr const char* kOp = "ops::l2_normalize";

// "[1, -1]" (a Shape would print -1 as None).
std::string axes_to_string(const std::vector<int>& axes) {
  std::string out = "[";
  for (std::size_t k = 0; k < axes.size(); ++k) out += (k ? ", " : "") + std::to_string(axes[k]);
  return out + "]";
}

// Which axes of `shape` form one vector, after checking the options.
std::vector<bool> reduced_axes(const Shape& shape, const L2NormalizeOptions& opts) {
  const std::size_t rank = shape.size();
  if (opts.is_whole_tensor()) return std::vector<bool>(rank, true);
  std::vector<bool> reduced(rank, false);
  if (opts.is_all_axes()) {
    if (rank == 0)
      throw ValueError(detail::str(kOp, ": all_axes() needs a batch axis, got a scalar of shape ", shape));
    std::fill(reduced.begin() + 1, reduced.end(), true);
    return reduced;
  }
  for (int axis : opts.axes()) {
    const int a = normalize_axis(axis, rank, kOp, shape);
    if (reduced[a]) {
      throw ValueError(detail::str(kOp, ": axis ", axis, " repeated in axes ", axes_to_string(opts.axes()),
                                   " for shape ", shape));
    }
    reduced[a] = true;
  }
  return reduced;
}

// The kernels' view of the problem. Extent-1 axes are dropped and neighbouring axes of the same
// kind merged; when the reduced axes then form one block the tensor is (outer, reduced, inner)
// and the fused kernel runs. Otherwise (e.g. axes {0, 2} of a 3-d tensor) every vector is listed
// by its base offset and the R offsets of its elements.
struct Plan {
  bool fused = true;
  int64_t outer = 1, reduced = 1, inner = 1;
  std::vector<int64_t> bases, offsets;  // the strided form
  [[nodiscard]] int64_t vectors() const { return fused ? outer * inner : static_cast<int64_t>(bases.size()); }
};

// All offsets Σ index_k·stride_k over the given (extent, stride) list, in row-major order.
std::vector<int64_t> offsets_of(const std::vector<std::pair<int64_t, int64_t>>& dims) {
  std::vector<int64_t> out{0};
  for (const auto& [extent, stride] : dims) {
    std::vector<int64_t> next;
    next.reserve(out.size() * extent);
    for (int64_t base : out)
      for (int64_t j = 0; j < extent; ++j) next.push_back(base + j * stride);
    out = std::move(next);
  }
  return out;
}

Plan make_plan(const Shape& shape, const std::vector<bool>& reduced) {
  struct Segment {
    int64_t extent;
    bool reduced;
  };
  std::vector<Segment> segments;
  for (std::size_t a = 0; a < shape.size(); ++a) {
    if (shape[a] == 1) continue;
    if (!segments.empty() && segments.back().reduced == reduced[a])
      segments.back().extent *= shape[a];
    else
      segments.push_back({shape[a], reduced[a]});
  }
  Plan plan;
  const auto blocks =
      std::count_if(segments.begin(), segments.end(), [](const Segment& s) { return s.reduced; });
  if (blocks <= 1) {
    bool after = false;
    for (const Segment& s : segments) {
      if (s.reduced)
        plan.reduced = s.extent, after = true;
      else
        (after ? plan.inner : plan.outer) *= s.extent;
    }
    return plan;
  }
  plan.fused = false;
  std::vector<int64_t> strides(segments.size());
  int64_t stride = 1;
  for (std::size_t k = segments.size(); k-- > 0;) {
    strides[k] = stride;
    stride *= segments[k].extent;
  }
  std::vector<std::pair<int64_t, int64_t>> kept, summed;  // (extent, stride), outermost first
  for (std::size_t k = 0; k < segments.size(); ++k) {
    (segments[k].reduced ? summed : kept).emplace_back(segments[k].extent, strides[k]);
  }
  plan.bases = offsets_of(kept);
  plan.offsets = offsets_of(summed);
  plan.reduced = static_cast<int64_t>(plan.offsets.size());
  return plan;
}

template <class T>
void run_forward(const Plan& p, const Tensor& x, Tensor& y, double* denom, EpsilonMode mode, double eps) {
  if (p.fused) {
    kernels::cpu::l2_normalize_forward(x.data<T>(), y.data<T>(), denom, p.outer, p.reduced, p.inner, mode,
                                       eps);
  } else {
    kernels::cpu::l2_normalize_forward_strided(x.data<T>(), y.data<T>(), denom, p.bases.data(), p.vectors(),
                                               p.offsets.data(), p.reduced, mode, eps);
  }
}

template <class T>
void run_backward(const Plan& p, const Tensor& x, const Tensor& dy, const double* denom, Tensor& dx,
                  EpsilonMode mode, bool overwrite) {
  if (p.fused) {
    kernels::cpu::l2_normalize_backward(x.data<T>(), dy.data<T>(), denom, dx.data<T>(), p.outer, p.reduced,
                                        p.inner, mode, overwrite);
  } else {
    kernels::cpu::l2_normalize_backward_strided(x.data<T>(), dy.data<T>(), denom, dx.data<T>(),
                                                p.bases.data(), p.vectors(), p.offsets.data(), p.reduced,
                                                mode, overwrite);
  }
}

}  // namespace

Tensor l2_normalize(const Tensor& x, L2NormalizeOptions opts) {
  detail::check_floating(x, kOp, "x");
  const double eps = opts.get_epsilon();
  if (!(eps >= 0.0)) throw ValueError(detail::str(kOp, ": epsilon must be >= 0, got ", eps));
  const std::vector<bool> reduced = reduced_axes(x.shape(), opts);
  if (x.is_symbolic()) return detail::make_result(x.shape(), x.dtype(), /*symbolic=*/true);

  Tensor y = detail::make_result(x.shape(), x.dtype(), /*symbolic=*/false);
  if (x.numel() == 0) return y;
  const Plan plan = make_plan(x.shape(), reduced);
  const EpsilonMode mode = opts.get_mode();
  const bool recording = detail::should_record({x});
  // The backward's only saved state: one denominator per vector (see kernels/cpu/l2_normalize.h).
  Tensor denom = recording ? Tensor::empty({plan.vectors()}, DType::kFloat64) : Tensor();
  double* d = recording ? denom.data<double>() : nullptr;
  if (x.dtype() == DType::kFloat32)
    run_forward<float>(plan, x, y, d, mode, eps);
  else
    run_forward<double>(plan, x, y, d, mode, eps);
  if (!recording) return y;

  // y = v/n  ⇒  dv = (dy − y·⟨dy, y⟩)/n, where per mode (s = Σv²):
  //   exact:   n = ‖v‖ (never clamped);
  //   TF:      n = sqrt(s) where s >= ε; where s < ε, y = v/√ε with √ε constant ⇒ dv = dy/√ε;
  //   PyTorch: n = ‖v‖ where ‖v‖ >= ε; where ‖v‖ < ε, y = v/ε ⇒ dv = dy/ε;
  //   additive: n = sqrt(s + ε) (never clamped): ∂y_i/∂v_j = δ_ij/n − v_i·v_j/n³ gives the same form.
  // At the boundary (s = ε, ‖v‖ = ε) the unclamped branch is taken, as tf.maximum's and
  // torch.clamp_min's gradients do.
  // At v = 0 in the exact mode v/‖v‖ has no derivative (its directional limits are unbounded). We
  // take y = 0 and dv = 0: finite, and it leaves a dead vector dead instead of kicking it with a huge
  // step. PyTorch's clamp gives dv = dy/ε there (1e12·dy for ε = 1e-12) and TensorFlow's
  // rsqrt(max(s, ε)) gives dy/√ε (1e6·dy); both modes reproduce that. A vector holding NaN or Inf
  // has a NaN forward and a NaN gradient.
  // Where a compatibility mode's s overflowed (float32 vectors near 1e20), n = Inf: y = 0, dv = 0.
  detail::record(y, kOp, {x}, [xd = x.detach(), denom, plan, mode](const Tensor& dy, detail::GradSink& sink) {
    if (!sink.wants(0)) return;
    bool overwrite = false;  // a new gradient buffer is written, not zero-filled and added into
    Tensor dx = sink.buffer(0, overwrite);
    if (xd.dtype() == DType::kFloat32)
      run_backward<float>(plan, xd, dy, denom.data<double>(), dx, mode, overwrite);
    else
      run_backward<double>(plan, xd, dy, denom.data<double>(), dx, mode, overwrite);
  });
  return y;
}

}  // namespace ops
}  // namespace normnet
