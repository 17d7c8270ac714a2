// An autoencoder on Fashion-MNIST whose code is an L2-normalized vector. The encoder (ending in
// Dense + ReLU + L2Normalization) and the decoder are separate Models, composed with the
// functional API into the autoencoder and trained together with fit. The encoder is then used
// alone: its outputs have norm 1, its weights are the ones training changed (shared, not
// copied), and the codes place images of one class near each other.
//
//   autoencoder_l2_code [--quick]
#include <cmath>
#include <iostream>

#include <normnet/datasets.h>
#include <normnet/layers.h>
#include <normnet/model.h>
#include <normnet/normnet.h>

#include "example_util.h"

using namespace normnet;

namespace {

constexpr int64_t kCode = 32;

Model make_encoder() {
  auto in = Input({28, 28, 1}, DType::kFloat32, "encoder_input");
  auto h = layers::Dense(256).activation("relu").name("enc_hidden")(layers::Flatten()(in));
  auto code = layers::Dense(kCode).activation("relu").name("enc_code")(h);
  Model encoder({in}, {layers::L2Normalization().name("unit_code")(code)});
  encoder.name("encoder");
  return encoder;
}

Model make_decoder() {
  auto in = Input({kCode}, DType::kFloat32, "decoder_input");
  auto h = layers::Dense(256).activation("relu").name("dec_hidden")(in);
  auto pixels = layers::Dense(28 * 28).activation("sigmoid").name("dec_pixels")(h);
  Model decoder({in}, {layers::Reshape({28, 28, 1})(pixels)});
  decoder.name("decoder");
  return decoder;
}

// For each code, the nearest other code by cosine similarity (= dot product of unit vectors):
// the fraction whose nearest neighbour has the same label.
double nearest_neighbour_agreement(const Tensor& codes, const Tensor& labels) {
  NoGradGuard no_grad;
  const std::vector<float> sim = ops::matmul(codes, ops::transpose(codes)).to_vector<float>();
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  const std::size_t n = y.size();
  std::size_t agree = 0;
  for (std::size_t i = 0; i < n; ++i) {
    std::size_t best = i == 0 ? 1 : 0;
    for (std::size_t j = 0; j < n; ++j) {
      if (j != i && sim[i * n + j] > sim[i * n + best]) best = j;
    }
    agree += y[best] == y[i];
  }
  return static_cast<double>(agree) / static_cast<double>(n);
}

int run_main(int argc, char** argv) {
  const bool quick = examples::has_flag(argc, argv, "--quick");
  Model encoder = make_encoder();
  Model decoder = make_decoder();
  auto in = Input({28, 28, 1}, DType::kFloat32, "image");
  Model autoencoder({in}, {decoder(encoder(in))});
  autoencoder.name("autoencoder");
  autoencoder.summary();
  std::cout << "\n";
  encoder.summary();

  const datasets::Dataset data = datasets::fashion_mnist();
  const int64_t n_train = quick ? 2048 : 60000, n_test = quick ? 500 : 2000;
  const Tensor x_train = ops::slice(data.train.x, 0, 0, n_train);
  const Tensor x_test = ops::slice(data.test.x, 0, 0, n_test);
  const Tensor y_test = ops::slice(data.test.y, 0, 0, n_test);

  const Tensor kernel_before = encoder.trainable_weights()[0].clone();  // enc_hidden/kernel
  autoencoder.compile(CompileOptions().optimizer(optimizers::Adam(1e-3)).loss(losses::MeanSquaredError()));
  const double mse_before = autoencoder.evaluate(x_test, x_test, 256).at("loss");
  autoencoder.fit(x_train, x_train, FitOptions().epochs(quick ? 1 : 5).batch_size(128).seed(1).verbose(quick ? 0 : 1));
  const double mse_after = autoencoder.evaluate(x_test, x_test, 256).at("loss");
  std::cout << "\ntrained the autoencoder on " << n_train << " images: test reconstruction MSE " << mse_before
            << " -> " << mse_after << "\n";

  // The encoder alone: the same layers and weights as inside the autoencoder.
  const double kernel_change = examples::max_abs_diff(kernel_before, encoder.trainable_weights()[0]);
  const Tensor codes = encoder.predict(x_test, 256);
  const Tensor composed = decoder.predict(codes, 256);
  const Tensor reconstructed = autoencoder.predict(x_test, 256);
  std::cout << "encoder weights changed by training the autoencoder: max |delta enc_hidden/kernel| = "
            << kernel_change << "\n"
            << "decoder(encoder(x)) vs autoencoder(x): max abs difference = "
            << examples::max_abs_diff(composed, reconstructed) << "\n";

  // Code norms: 1, except an all-zero ReLU code, which exact L2 normalization maps to 0.
  const std::vector<float> c = codes.to_vector<float>();
  double worst = 0;
  int64_t zero_codes = 0;
  for (int64_t i = 0; i < n_test; ++i) {
    double norm2 = 0;
    for (int64_t k = 0; k < kCode; ++k) norm2 += double(c[i * kCode + k]) * c[i * kCode + k];
    if (norm2 == 0) {
      ++zero_codes;
    } else {
      worst = std::max(worst, std::abs(std::sqrt(norm2) - 1.0));
    }
  }
  std::cout << "encoder codes of " << n_test << " test images " << shape_to_string(codes.shape())
            << ": max |norm - 1| = " << worst << ", all-zero codes: " << zero_codes << "\n"
            << "nearest code (cosine) has the same class for " << nearest_neighbour_agreement(codes, y_test) * 100
            << "% of test images (chance: 10%)\n";
  const bool ok = kernel_change > 0 && worst < 1e-6 && mse_after < mse_before &&
                  examples::max_abs_diff(composed, reconstructed) == 0;
  std::cout << (ok ? "RESULT: shared weights, unit-norm codes\n" : "RESULT: FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_example([&] { return run_main(argc, argv); });
}
