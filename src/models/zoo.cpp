// Ready-made models: the default Fashion-MNIST CNN of `normnet train`.
#include "normnet/zoo.h"

#include "normnet/error.h"
#include "normnet/layers.h"
#include "normnet/optimizers.h"
#include "normnet/regularizers.h"

namespace normnet::zoo {

FashionCnnOptions& FashionCnnOptions::classes(int64_t classes) {
  if (classes < 2) throw ValueError(detail::str("zoo::fashion_cnn: classes must be at least 2, got ", classes));
  classes_ = classes;
  return *this;
}

FashionCnnOptions& FashionCnnOptions::embedding_scale(double scale) {
  if (!(scale >= 0.0) || scale > 1e6)
    throw ValueError(detail::str("zoo::fashion_cnn: embedding_scale must be in [0, 1e6], got ", scale));
  embedding_scale_ = scale;
  return *this;
}

FashionCnnOptions& FashionCnnOptions::embedding_dropout(double rate) {
  if (!(rate >= 0.0 && rate < 1.0))
    throw ValueError(detail::str("zoo::fashion_cnn: embedding_dropout must be in [0, 1), got ", rate));
  embedding_dropout_ = rate;
  return *this;
}

Model fashion_cnn(const FashionCnnOptions& options) {
  Tensor in = Input({28, 28, 1}, DType::kFloat32, "image");
  Tensor h = layers::Conv2D(32, {3, 3}).activation("relu").name("conv2d")(in);
  h = layers::Conv2D(64, {3, 3}).activation("relu").name("conv2d_1")(h);
  h = layers::MaxPooling2D({2, 2}).name("max_pooling2d")(h);
  h = layers::Dropout(0.25).name("dropout")(h);
  h = layers::Flatten().name("flatten")(h);
  h = layers::Dense(128)
          .activation("relu")
          .activity_regularizer(regularizers::L1L2(0.0, 1e-4))
          .name("embedding")(h);
  auto normalize = layers::L2Normalization().name("l2_normalization");
  if (options.embedding_scale_ > 0) normalize.learnable_scale(options.embedding_scale_, /*per_channel=*/false);
  h = normalize(h);
  h = layers::Dropout(options.embedding_dropout_).name("dropout_1")(h);
  Tensor logits = layers::Dense(options.classes_).name("logits")(h);
  Model model({in}, {logits});
  model.name("fashion_cnn");
  return model;
}

CompileOptions fashion_cnn_compile_options(LearningRateSchedule learning_rate) {
  return CompileOptions()
      .optimizer(optimizers::Adam(std::move(learning_rate)))
      .loss(losses::SparseCategoricalCrossentropy().from_logits(true))
      .metrics({"accuracy"});
}

LearningRateSchedule fashion_cnn_schedule(double learning_rate, int64_t epochs, int64_t batches_per_epoch) {
  if (epochs < 1 || batches_per_epoch < 1)
    throw ValueError(detail::str("zoo::fashion_cnn_schedule: epochs and batches_per_epoch must be at least 1, got ", epochs,
                                 " and ", batches_per_epoch));
  return schedules::CosineDecay(learning_rate, epochs * batches_per_epoch);
}

}  // namespace normnet::zoo
