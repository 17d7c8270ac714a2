// The L2Normalization layer run forward and backward on a real photo, two ways:
//   - over the whole image (all non-batch axes): one unit vector of H·W·3 values,
//   - over the channel axis: every pixel's RGB becomes a unit vector (its chromaticity).
// Writes both as PNG, prints the norms and the gradient's properties, and checks the gradient in
// float64 against central finite differences on a small crop.
//
//   image_l2norm [IMAGE] [--out DIR] [--quick]      (IMAGE defaults to examples/data/chelsea.png)
#include <cmath>
#include <filesystem>
#include <iostream>

#include <normnet/image.h>
#include <normnet/layers.h>
#include <normnet/normnet.h>

#include "example_util.h"

using namespace normnet;

namespace {

// Image dims: N = 1 image, H rows, W columns, C = 3 channels (NHWC, as Keras).

double min_of(const Tensor& t) { return -ops::max(-t).item(); }

// Central-difference check of d/dx Σ L2Normalization(x) ⊙ w in float64: returns the max abs
// difference between autograd's gradient and (f(x + h·e_i) − f(x − h·e_i)) / 2h.
double gradient_check(layers::L2Normalization layer, const Tensor& crop, const Tensor& w) {
  Tensor x = crop.clone();
  x.set_requires_grad(true);
  ops::sum(layer(x) * w).backward();
  const std::vector<double> analytic = x.grad().to_vector<double>();

  NoGradGuard no_grad;
  std::vector<double> values = crop.to_vector<double>();
  const double h = 1e-6;
  double max_error = 0;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double saved = values[i];
    values[i] = saved + h;
    const double up = ops::sum(layer(Tensor::from_vector(values, crop.shape())) * w).item();
    values[i] = saved - h;
    const double down = ops::sum(layer(Tensor::from_vector(values, crop.shape())) * w).item();
    values[i] = saved;
    max_error = std::max(max_error, std::abs((up - down) / (2 * h) - analytic[i]));
  }
  return max_error;
}

// Forward and backward over the whole image with the layer `layer`; prints what it shows and
// returns the normalized image.
Tensor forward_backward(const std::string& title, layers::L2Normalization layer, const Tensor& image) {
  Tensor x = image.clone();
  x.set_requires_grad(true);
  const Tensor y = layer(x);
  // A loss that pulls every pixel towards pure green: Σ y ⊙ g with g = (0, 1, 0) everywhere.
  const Tensor green = Tensor::from_vector(std::vector<float>{0.0f, 1.0f, 0.0f}, {3});
  ops::sum(y * green).backward();
  const Tensor dx = x.grad();
  // L2 normalization is scale invariant (y(αx) = y(x)), so the gradient is orthogonal to x
  // along the normalized axes: Σ dx ⊙ x = 0 per normalized vector (here summed over all).
  const double dx_dot_x = ops::sum(dx * image).item();
  const double dx_norm = std::sqrt(ops::sum(ops::square(dx)).item());
  const double x_norm = std::sqrt(ops::sum(ops::square(image)).item());
  std::cout << title << "\n"
            << "  output range [" << min_of(y) << ", " << ops::max(y).item() << "]\n"
            << "  gradient of sum(y * green): max |dx| = " << ops::max(ops::abs(dx)).item()
            << ", <dx, x> / (|dx| |x|) = " << dx_dot_x / (dx_norm * x_norm) << " (scale invariance: 0)\n";
  return y.detach();
}

int run_main(int argc, char** argv) {
  std::string path = std::string(NORMNET_EXAMPLES_DATA_DIR) + "/chelsea.png";
  if (argc > 1 && argv[1][0] != '-') path = argv[1];
  const std::filesystem::path out_dir = examples::option_value(argc, argv, "--out", ".");
  std::filesystem::create_directories(out_dir);

  const Tensor pixels = io::read_image(path, 3);  // [H, W, 3] in [0, 1]
  const Tensor image = ops::unsqueeze(pixels, 0);  // [1, H, W, 3]
  std::cout << "image " << path << ": shape " << shape_to_string(image.shape()) << ", values in ["
            << min_of(image) << ", " << ops::max(image).item() << "]\n\n";

  // 1. The whole image as one vector.
  const Tensor y_all = forward_backward("L2Normalization().all_axes(): the whole image is one unit vector",
                                        layers::L2Normalization().all_axes(), image);
  std::cout << "  norm of the output = " << std::sqrt(ops::sum(ops::square(y_all.to(DType::kFloat64))).item())
            << " (over " << image.numel() << " values)\n";
  // The values are tiny (about 1/sqrt(H·W·3)); stretch them by 1/max to view them.
  const Tensor view_all = ops::squeeze(y_all / ops::max(y_all).item(), 0);
  io::write_png((out_dir / "chelsea_l2_all_axes.png").string(), view_all);

  // 2. Each pixel's RGB as one vector.
  const Tensor y_rgb = forward_backward("\nL2Normalization().axis(-1): every pixel's RGB is a unit vector",
                                        layers::L2Normalization().axis(-1), image);
  const Tensor pixel_norms = ops::sqrt(ops::sum(ops::square(y_rgb.to(DType::kFloat64)), {-1}));  // [1, H, W]
  // A black pixel (RGB = 0) maps to 0 (exact mode's convention at the zero vector); every other
  // pixel to norm 1.
  const Tensor nonblack = ops::sign(ops::sum(image, {-1})).to(DType::kFloat64);
  std::cout << "  per-pixel output norms: max |norm - 1| = " << ops::max(ops::abs(pixel_norms - nonblack)).item()
            << " over " << image.numel() / 3 - static_cast<int64_t>(ops::sum(nonblack).item())
            << " black and " << static_cast<int64_t>(ops::sum(nonblack).item()) << " other pixels\n";
  // Unit RGB vectors lie in [0, 1]: the image shows each pixel's colour at full brightness.
  io::write_png((out_dir / "chelsea_l2_channels.png").string(), ops::squeeze(y_rgb, 0));
  std::cout << "\nwrote " << (out_dir / "chelsea_l2_all_axes.png").string() << " and "
            << (out_dir / "chelsea_l2_channels.png").string() << "\n";

  // 3. Float64 gradient check on a 6 x 7 crop (126 values), both ways.
  const int64_t top = pixels.size(0) / 2, left = pixels.size(1) / 2;
  const Tensor crop = ops::unsqueeze(
      ops::slice(ops::slice(pixels, 0, top, top + 6), 1, left, left + 7), 0).to(DType::kFloat64);
  const Tensor w = Tensor::randn(crop.shape(), 3, DType::kFloat64);
  const double err_all = gradient_check(layers::L2Normalization().all_axes(), crop, w);
  const double err_rgb = gradient_check(layers::L2Normalization().axis(-1), crop, w);
  std::cout << "\nfloat64 gradient check on a " << shape_to_string(crop.shape())
            << " crop (central differences, h = 1e-6):\n"
            << "  all axes:     max |autograd - finite difference| = " << err_all << "\n"
            << "  channel axis: max |autograd - finite difference| = " << err_rgb << "\n";
  const bool ok = err_all < 1e-7 && err_rgb < 1e-7;
  std::cout << (ok ? "gradient check PASSED\n" : "gradient check FAILED\n");
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  (void)examples::has_flag(argc, argv, "--quick");  // one photo is already quick
  return examples::run_example([&] { return run_main(argc, argv); });
}
