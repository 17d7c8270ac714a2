// A network whose output is an L2-normalized 3-d vector: every output lies on the unit sphere.
//   1. With no biases and ReLU the network is positively homogeneous (z(s·x) = s·z(x)), so scaling
//      the input scales the pre-normalization output z. The default (exact) mode still returns
//      norm-1 vectors at ‖z‖ = 1e-8 .. 1e-30; TensorFlow's mode (ε = 1e-12 on Σz²) and PyTorch's
//      (ε = 1e-12 on ‖z‖) do not. The norms are printed side by side.
//   2. Trains the network briefly on Fashion-MNIST (a Dense(10) classifier on top of the unit
//      vectors) and writes an SVG of test images' embeddings on the sphere, coloured by class.
//
//   unit_vector_output [--quick] [--out DIR]
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>

#include <normnet/datasets.h>
#include <normnet/layers.h>
#include <normnet/model.h>
#include <normnet/normnet.h>

#include "example_util.h"

using namespace normnet;

namespace {

// Row norms of y [N, 3], as the largest deviation of any row's norm from 1 and the mean norm.
std::pair<double, double> norm_stats(const Tensor& y) {
  const std::vector<double> v = y.to(DType::kFloat64).to_vector<double>();
  double worst = 0, total = 0;
  const std::size_t rows = v.size() / 3;
  for (std::size_t r = 0; r < rows; ++r) {
    const double n = std::sqrt(v[3 * r] * v[3 * r] + v[3 * r + 1] * v[3 * r + 1] + v[3 * r + 2] * v[3 * r + 2]);
    worst = std::max(worst, std::abs(n - 1.0));
    total += n;
  }
  return {worst, total / static_cast<double>(rows)};
}

// Orthographic view of unit vectors: rotate the sphere (tilted 25° towards the viewer, turned
// 35°), drop the depth axis. Points on the far side are drawn faded, behind the outline.
void write_sphere_svg(const std::string& path, const Tensor& points, const Tensor& labels) {
  static const char* colours[10] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  const std::vector<float> p = points.to_vector<float>();
  const std::vector<int64_t> y = labels.to_vector<int64_t>();
  const double a = 35.0 * M_PI / 180, b = 25.0 * M_PI / 180;
  const double size = 520, centre = 240, radius = 220;
  std::ofstream out(path);
  if (!out) throw IoError(detail::str("unit_vector_output: cannot write '", path, "'"));
  out << "<svg xmlns='http://www.w3.org/2000/svg' width='" << size + 160 << "' height='" << size << "'>\n"
      << "<rect width='100%' height='100%' fill='white'/>\n";
  for (int pass = 0; pass < 2; ++pass) {  // back hemisphere first, then the outline, then the front
    if (pass == 1) {
      out << "<circle cx='" << centre << "' cy='" << centre << "' r='" << radius
          << "' fill='none' stroke='black' stroke-width='1'/>\n";
    }
    for (std::size_t i = 0; i < y.size(); ++i) {
      const double x0 = p[3 * i], y0 = p[3 * i + 1], z0 = p[3 * i + 2];
      const double x1 = std::cos(a) * x0 + std::sin(a) * z0, z1 = -std::sin(a) * x0 + std::cos(a) * z0;
      const double y2 = std::cos(b) * y0 - std::sin(b) * z1, z2 = std::sin(b) * y0 + std::cos(b) * z1;
      if ((z2 >= 0) != (pass == 1)) continue;
      out << "<circle cx='" << centre + radius * x1 << "' cy='" << centre - radius * y2 << "' r='2.5' fill='"
          << colours[y[i] % 10] << "' fill-opacity='" << (z2 >= 0 ? 0.9 : 0.25) << "'/>\n";
    }
  }
  const auto& names = datasets::fashion_mnist_class_names();
  for (std::size_t c = 0; c < names.size(); ++c) {
    out << "<circle cx='" << size - 20 << "' cy='" << 30 + 22 * c << "' r='6' fill='" << colours[c] << "'/>"
        << "<text x='" << size - 8 << "' y='" << 35 + 22 * c << "' font-family='sans-serif' font-size='13'>"
        << names[c] << "</text>\n";
  }
  out << "</svg>\n";
  if (!out) throw IoError(detail::str("unit_vector_output: writing '", path, "' failed"));
}

// The network and its twins: the same layers (same weights) ending in each epsilon mode, and z.
struct Nets {
  Model exact, tensorflow, pytorch, raw;
};

Nets make_nets() {
  // No biases, so z(s·x) = s·z(x) (ReLU(s·h) = s·ReLU(h) for s > 0).
  auto flatten = layers::Flatten();
  auto hidden = layers::Dense(64).activation("relu").use_bias(false).name("hidden");
  auto to3 = layers::Dense(3).use_bias(false).name("to3");
  auto head = [&](const Tensor& in) { return to3(hidden(flatten(in))); };
  auto in = Input({28, 28, 1}, DType::kFloat32, "image");
  const Tensor z = head(in);
  Model exact({in}, {layers::L2Normalization().name("unit")(z)});
  exact.name("unit_vector_net");
  auto tf_in = Input({28, 28, 1});
  Model tf({tf_in}, {layers::L2Normalization().mode(EpsilonMode::kTensorFlow).epsilon(1e-12)(head(tf_in))});
  auto pt_in = Input({28, 28, 1});
  Model pt({pt_in}, {layers::L2Normalization().mode(EpsilonMode::kPyTorch).epsilon(1e-12)(head(pt_in))});
  return {exact, tf, pt, Model({in}, {z})};
}

// Prints the norm table; true when the exact mode gave unit vectors at every scale.
bool print_mode_table(const Nets& nets, const Tensor& sample) {
  std::cout << "\nOutput norms for 8 test images scaled by s (z = the Dense(3) output; epsilon = 1e-12):\n"
            << "     s     mean |z|   exact: mean |y|  max|1-|y||   TensorFlow: mean |y|   PyTorch: mean |y|\n";
  bool exact_ok = true, tf_breaks = false, pt_breaks = false;
  for (double s : {1.0, 1e-4, 1e-6, 1e-8, 1e-12, 1e-20, 1e-30}) {
    const Tensor xs = sample * s;
    NoGradGuard no_grad;
    const double z_mean = norm_stats(nets.raw(xs)).second;
    const auto [exact_dev, exact_mean] = norm_stats(nets.exact(xs));
    const double tf_mean = norm_stats(nets.tensorflow(xs)).second;
    const double pt_mean = norm_stats(nets.pytorch(xs)).second;
    std::cout << std::setw(7) << s << std::setw(12) << z_mean << std::setw(16) << exact_mean << std::setw(12)
              << exact_dev << std::setw(20) << tf_mean << std::setw(22) << pt_mean << "\n";
    exact_ok = exact_ok && exact_dev < 1e-6;
    if (z_mean <= 1e-8) tf_breaks = tf_breaks || tf_mean < 0.5;
    if (z_mean <= 1e-20) pt_breaks = pt_breaks || pt_mean < 0.5;
  }
  std::cout << (exact_ok ? "exact mode: every output has norm 1 at every scale\n"
                         : "exact mode: SOME OUTPUT IS NOT A UNIT VECTOR\n")
            << (tf_breaks ? "TensorFlow mode: outputs of norm <= 1e-8 are not normalized (|y| = |z|/1e-6)\n" : "")
            << (pt_breaks ? "PyTorch mode: outputs of norm < 1e-12 are not normalized (|y| = |z|/1e-12)\n" : "")
            << "\n";
  return exact_ok;
}

// Trains a linear classifier on the unit vectors (the network nested, so weights are shared),
// then writes the test embeddings' picture. True when every embedding has norm 1.
bool train_and_plot(const Model& net, const datasets::Dataset& data, bool quick, const std::string& svg) {
  const int64_t n_train = quick ? 2048 : 60000;
  auto cls_in = Input({28, 28, 1});
  Model classifier({cls_in}, {layers::Dense(10).name("logits")(net(cls_in))});
  classifier.compile(CompileOptions()
                         .optimizer(optimizers::Adam(quick ? 3e-3 : 2e-3))
                         .loss(losses::SparseCategoricalCrossentropy().from_logits(true))
                         .metrics({"accuracy"}));
  classifier.fit(ops::slice(data.train.x, 0, 0, n_train), ops::slice(data.train.y, 0, 0, n_train),
                 FitOptions().epochs(quick ? 1 : 5).batch_size(128).seed(1).verbose(quick ? 0 : 1));
  const int64_t n_test = quick ? 500 : 10000;
  const Tensor x_test = ops::slice(data.test.x, 0, 0, n_test);
  const Tensor y_test = ops::slice(data.test.y, 0, 0, n_test);
  const auto result = classifier.evaluate(x_test, y_test, 256);
  std::cout << "trained on " << n_train << " images: test accuracy " << result.at("accuracy") << " on " << n_test
            << " images\n";

  const Tensor embedded = net.predict(x_test, 256);
  const auto [dev, mean_norm] = norm_stats(embedded);
  const int64_t n_plot = quick ? 300 : 2000;
  write_sphere_svg(svg, ops::slice(embedded, 0, 0, n_plot), ops::slice(y_test, 0, 0, n_plot));
  std::cout << "embeddings of " << n_test << " test images: mean norm " << mean_norm << ", max |norm - 1| = " << dev
            << "\nwrote " << svg << " (" << n_plot << " points)\n";
  return dev < 1e-6;
}

int run_main(int argc, char** argv) {
  const bool quick = examples::has_flag(argc, argv, "--quick");
  const std::filesystem::path out_dir = examples::option_value(argc, argv, "--out", ".");
  std::filesystem::create_directories(out_dir);

  const Nets nets = make_nets();
  nets.exact.summary();
  const datasets::Dataset data = datasets::fashion_mnist();
  const bool exact_ok = print_mode_table(nets, ops::slice(data.test.x, 0, 0, 8));
  const bool unit = train_and_plot(nets.exact, data, quick, (out_dir / "unit_sphere_embeddings.svg").string());
  return exact_ok && unit ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return examples::run_example([&] { return run_main(argc, argv); });
}
