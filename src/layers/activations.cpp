// Keras's activation functions by name, composed from ops (their gradients come from autograd).
// softplus and elu need log1p and expm1, which are not ops: they are composed with Goldberg's and
// Kahan's tricks so that they stay accurate to a few ulps where log(1 + e) and eˣ − 1 would not.
#include "normnet/activations.h"

#include <cmath>
#include <limits>

#include "normnet/ops/elementwise.h"
#include "normnet/ops/nn.h"

namespace normnet::activations {
namespace {

using detail::str;

Tensor scalar_of(const Tensor& x, double value) { return Tensor::full({}, value, x.dtype()); }

double lowest_of(DType dtype) {
  return dtype == DType::kFloat32 ? static_cast<double>(std::numeric_limits<float>::lowest())
                                  : std::numeric_limits<double>::lowest();
}

// 1 where t == 0, else 0 (NaN stays NaN); a constant for autograd (sign has gradient 0).
Tensor is_zero(const Tensor& t) { return 1.0 - ops::abs(ops::sign(t)); }

// log(1 + e) for e in [0, 1], accurate to a few ulps (Goldberg, "What every computer scientist
// should know about floating-point arithmetic", Theorem 4): with u = 1 + e (rounded) and
// d = u − 1 (exact), log1p(e) = log(u)·e/d, and = e when d = 0 (e below half an ulp of 1).
// Plain log(1 + e) would lose all digits of a tiny e.
Tensor log1p_unit(const Tensor& e) {
  const Tensor u = 1.0 + e;
  const Tensor d = u - 1.0;
  const Tensor z = is_zero(d);
  // (1 − z) zeroes the quotient where d = 0, and d + z keeps its denominator non-zero there.
  return (1.0 - z) * (ops::log(u) * e / (d + z)) + z * e;
}

// eᵐ − 1 for m <= 0, accurate to a few ulps in value and gradient. For m < −½, u − 1 with
// u = eᵐ <= 0.61 is already exact to an ulp (|u − 1| > 0.39) and its gradient is u. For m >= −½
// Kahan's expm1 applies: with d = u − 1, expm1(m) = d·m/log(u), and = m when u = 1 (plain u − 1
// would keep no digit of a tiny m). The Kahan branch sees m clamped to [−1, 0] so that it stays
// finite where its weight is 0 (log(0) would make 0·NaN).
Tensor expm1_nonpositive(const Tensor& m) {
  const Tensor far = 0.5 + 0.5 * ops::sign(-0.5 - m);  // 1 where m < −½ (½ at −½: both branches agree)
  const Tensor plain = ops::exp(m) - 1.0;
  const Tensor mk = ops::clip(m, -1.0, 0.0);
  const Tensor u = ops::exp(mk);
  const Tensor d = u - 1.0;
  const Tensor z = is_zero(d);
  const Tensor kahan = (1.0 - z) * (d * mk / (ops::log(u) + z)) + z * mk;
  return far * plain + (1.0 - far) * kahan;
}

// log(1 + eˣ) = max(x, 0) + log1p(e^−|x|). max(x, 0) is written x·s with s = [x > 0] (½ at 0, a
// constant for autograd), so the gradient is sigmoid(x) everywhere: s at 0 gives ½ (relu's
// would give 0), and for x < 0 it adds an exact 0 to the tiny e/(1 + e) (writing max(x, 0) as
// (x + |x|)/2 would add ½ − ½ and round the tail gradient away). x = −inf is clamped to the lowest
// finite value so that x·s is 0 rather than NaN; +inf gives +inf.
Tensor softplus(const Tensor& x) {
  const Tensor xc = ops::clip(x, lowest_of(x.dtype()), std::numeric_limits<double>::infinity());
  const Tensor s = 0.5 + 0.5 * ops::sign(xc);
  return xc * s + log1p_unit(ops::exp(-ops::abs(xc)));
}

// x if x > 0 else α(eˣ − 1); max(x, 0) passes gradient 1 at x = 0 and −relu(−x) = min(x, 0)
// passes 0 there, so the gradient at 0 is 1, as TensorFlow's EluGrad and SeluGrad (times λ).
Tensor elu(const Tensor& x, double alpha) {
  const Tensor positive = ops::maximum(x, scalar_of(x, 0.0));
  const Tensor negative = expm1_nonpositive(-ops::relu(-x));
  return alpha == 1.0 ? positive + negative : positive + alpha * negative;
}

// Keras's SELU constants (Klambauer et al. 2017).
constexpr double kSeluAlpha = 1.67326324235437728481704299167176;
constexpr double kSeluScale = 1.05070098735548049341933498529460;

// min(6, max(x, 0)): minimum passes the gradient to its first operand on ties, so both kinks (0
// and 6) get gradient 0, as jax.nn.relu6 and TensorFlow's Relu6Grad.
Tensor relu6(const Tensor& x) { return ops::minimum(scalar_of(x, 6.0), ops::relu(x)); }

}  // namespace

const std::vector<std::string>& names() {
  static const std::vector<std::string> kNames = {
      "linear",   "relu",     "relu6",      "leaky_relu", "elu",   "selu", "sigmoid", "tanh",        "softmax",
      "log_softmax", "softplus", "softsign", "silu",       "swish", "mish", "exponential"};
  return kNames;
}

bool is_known(const std::string& name) {
  if (name.empty() || name == "None") return true;
  for (const auto& known : names()) {
    if (known == name) return true;
  }
  return false;
}

void validate(const std::string& name, const std::string& who) {
  if (is_known(name)) return;
  std::string list;
  for (const auto& known : names()) list += (list.empty() ? "" : ", ") + known;
  throw ValueError(str(who, ": unknown activation '", name, "' (expected one of ", list, ")"));
}

Tensor apply(const std::string& name, const Tensor& x) {
  if (name.empty() || name == "None" || name == "linear") return x;
  if (name == "relu") return ops::relu(x);
  if (name == "relu6") return relu6(x);
  if (name == "leaky_relu") return ops::maximum(x, 0.2 * x);
  if (name == "elu") return elu(x, 1.0);
  if (name == "selu") return kSeluScale * elu(x, kSeluAlpha);
  if (name == "sigmoid") return ops::sigmoid(x);
  if (name == "tanh") return ops::tanh(x);
  if (name == "softmax") return ops::softmax(x, -1);
  if (name == "log_softmax") return ops::log_softmax(x, -1);
  if (name == "softplus") return softplus(x);
  if (name == "softsign") return x / (1.0 + ops::abs(x));
  if (name == "silu" || name == "swish") return x * ops::sigmoid(x);
  if (name == "mish") return x * ops::tanh(softplus(x));
  if (name == "exponential") return ops::exp(x);
  validate(name, "activations::apply");
  return x;  // not reached: validate threw
}

}  // namespace normnet::activations
