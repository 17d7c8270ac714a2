// Ready-made models. fashion_cnn() is the default model of `normnet train`: Keras's mnist_cnn
// example with an L2-normalized, activity-regularized 128-d embedding.
//
//   Model model = zoo::fashion_cnn();
//   model.compile(zoo::fashion_cnn_compile_options());
//   model.fit(data.train.x, data.train.y, FitOptions().epochs(3).batch_size(zoo::kFashionCnnBatchSize));
#pragma once

#include <cstdint>

#include "normnet/model.h"
#include "normnet/optimizers.h"
#include "normnet/training.h"

namespace normnet::zoo {

// The batch size of Keras's mnist_cnn, used by `normnet train` by default.
inline constexpr int64_t kFashionCnnBatchSize = 128;

class FashionCnnOptions {
 public:
  // Classes of the final Dense layer (10 for Fashion-MNIST).
  FashionCnnOptions& classes(int64_t classes);
  // Initial value of the L2Normalization layer's learnable scalar scale s: the embedding is
  // s·h/‖h‖. 0 = no scale weight (a plain unit-norm embedding). See fashion_cnn().
  FashionCnnOptions& embedding_scale(double scale);

  // Rate of the Dropout after the L2-normalized embedding ("dropout_1"); Keras's mnist_cnn uses
  // 0.5 there, which costs 0.7 points of test accuracy after 3 epochs (docs/cli.md).
  FashionCnnOptions& embedding_dropout(double rate);

  int64_t classes_ = 10;
  double embedding_scale_ = 16.0;
  double embedding_dropout_ = 0.25;
};

// NHWC [N, 28, 28, 1] → logits [N, classes]:
//   Conv2D(32, 3×3, relu) → Conv2D(64, 3×3, relu) → MaxPooling2D(2×2) → Dropout(0.25) → Flatten
//   → Dense(128, relu, activity_regularizer L1L2(0, 1e-4)) → L2Normalization (learnable scalar
//   scale) → Dropout(0.25) → Dense(classes).
// Why a scale: a unit-norm embedding bounds every logit by the norm of its weight column
// (≈ 1.4 with Glorot initialization), so the softmax starts nearly flat and the cross-entropy
// cannot fall until the last Dense grows; a learnable scale (NormFace, Wang et al. 2017; ParseNet's
// per-channel scale, Liu et al. 2015) lets the logits reach a useful range at once. Layer names
// are fixed ("conv2d", ..., "embedding", "l2_normalization", "logits"); the weights come from
// normnet's global random stream (set_random_seed).
[[nodiscard]] Model fashion_cnn(const FashionCnnOptions& options = {});

// Adam(learning_rate), SparseCategoricalCrossentropy(from_logits), metric "accuracy". A number
// is a constant rate; `normnet train` passes fashion_cnn_schedule(...).
[[nodiscard]] CompileOptions fashion_cnn_compile_options(LearningRateSchedule learning_rate = 1e-3);

// The learning rate `normnet train` uses by default: cosine decay from `learning_rate` to 0 over
// `epochs` epochs of `batches_per_epoch` steps (schedules::CosineDecay). Annealing to 0 by the
// last step is what lets a short run end at its best accuracy (docs/cli.md has the figures).
[[nodiscard]] LearningRateSchedule fashion_cnn_schedule(double learning_rate, int64_t epochs, int64_t batches_per_epoch);

}  // namespace normnet::zoo
