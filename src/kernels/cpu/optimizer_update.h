// Fused per-element optimizer updates (SGD, Adam/AdamW, RMSprop) over contiguous buffers of n
// elements: one pass reads w, g and the slots and writes w and the slots in place. Raw loops: no
// allocation, no throwing, OpenMP above a size threshold. T is float or double (explicitly
// instantiated in optimizer_update.cpp); scalar hyper-parameters arrive as T, already combined
// in double by the caller (optimizers.cpp), so float32 weights update in float32 arithmetic as
// Keras's do.
#pragma once

#include <cstdint>

namespace normnet::kernels::cpu {

// SGD, Keras's rule (keras/optimizers/sgd.py):
//   momentum = 0:  w ← w − lr·g
//   momentum > 0:  v ← m·v − lr·g;  w ← w + v            (nesterov: w ← w + m·v − lr·g, with the new v)
// PyTorch's torch.optim.SGD keeps b ← m·b + g and steps w ← w − lr·b, so lr multiplies the
// whole buffer: the two agree for a constant lr (v = −lr·b) and differ once lr changes.
// `velocity` may be null when momentum == 0.
template <class T>
void sgd_update(T* w, const T* g, T* velocity, int64_t n, T lr, T momentum, bool nesterov);

// One Adam step; lr_t = lr·√(1−β₂ᵗ)/(1−β₁ᵗ) already folds in the bias corrections (Keras's form,
// keras/optimizers/adam.py, which is Kingma & Ba's "ε-hat" variant):
//   decay > 0 (AdamW):  w ← w − decay·w        with decay = lr·weight_decay (decoupled, applied first)
//   m ← m + (g − m)·(1 − β₁)
//   v ← v + (g² − v)·(1 − β₂)
//   amsgrad:            v̂ ← max(v̂, v), and v̂ stands for v below
//   w ← w − lr_t·m / (√v + ε)
struct AdamCoefficients {
  double lr_t = 0.0;           // lr·√(1−β₂ᵗ)/(1−β₁ᵗ)
  double one_minus_beta_1 = 0.1;
  double one_minus_beta_2 = 0.001;
  double epsilon = 1e-7;
  double decay = 0.0;          // lr·weight_decay for AdamW, 0 for Adam
};
// `v_hat` is used (and must be non-null) only when amsgrad.
template <class T>
void adam_update(T* w, const T* g, T* m, T* v, T* v_hat, int64_t n, const AdamCoefficients& c, bool amsgrad);
// The same step as one plain scalar loop per element (no OpenMP, no template specialization):
// the reference the fused loop is tested against, bit for bit.
template <class T>
void adam_update_reference(T* w, const T* g, T* m, T* v, T* v_hat, int64_t n, const AdamCoefficients& c,
                           bool amsgrad);

// RMSprop, Keras's rule (keras/optimizers/rmsprop.py, and TF's ApplyRMSProp kernel), ε inside
// the square root (PyTorch puts it outside: √s + ε):
//   s ← ρ·s + (1 − ρ)·g²
//   Δ = lr·g / √(s + ε)
//   momentum = 0:  w ← w − Δ;    momentum > 0:  u ← momentum·u + Δ;  w ← w − u
// `mom` may be null when momentum == 0.
template <class T>
void rmsprop_update(T* w, const T* g, T* velocity, T* mom, int64_t n, T lr, T rho, T momentum, T epsilon);

// Σ x² accumulated in double, in a fixed order (global_clipnorm's norm; deterministic).
template <class T>
double sum_of_squares(const T* x, int64_t n);

// x ← x·scale (global_clipnorm's rescaling of a gradient copy).
template <class T>
void scale_in_place(T* x, int64_t n, T scale);

}  // namespace normnet::kernels::cpu
