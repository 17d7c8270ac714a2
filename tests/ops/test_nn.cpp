// nn ops: softmax / log_softmax over any axis, dropout, embedding, sparse softmax cross-entropy.
// Values against independent double computations, stability at extreme logits, dropout
// statistics and determinism, error messages, and float64 gradient checks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;
using testing::GradCheckOptions;

Tensor f64(Shape shape, uint64_t seed) { return Tensor::randn(std::move(shape), seed, DType::kFloat64); }

// Expects `call` to throw E whose message contains every one of `parts`.
template <class E, class Call>
void expect_error(const Call& call, std::initializer_list<std::string> parts) {
  try {
    call();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "missing '" << part << "' in: " << e.what();
    }
  }
}

// Softmax of x [A, B, C] along `axis`, computed independently in double with no shift.
std::vector<double> softmax_3d_double(const std::vector<double>& x, const Shape& s, int axis) {
  std::vector<double> y(x.size());
  auto at = [&](int64_t a, int64_t b, int64_t c) { return static_cast<std::size_t>((a * s[1] + b) * s[2] + c); };
  for (int64_t a = 0; a < s[0]; ++a) {
    for (int64_t b = 0; b < s[1]; ++b) {
      for (int64_t c = 0; c < s[2]; ++c) {
        double total = 0.0;
        for (int64_t k = 0; k < s[static_cast<std::size_t>(axis)]; ++k) {
          const std::size_t j = axis == 0 ? at(k, b, c) : axis == 1 ? at(a, k, c) : at(a, b, k);
          total += std::exp(x[j]);
        }
        y[at(a, b, c)] = std::exp(x[at(a, b, c)]) / total;
      }
    }
  }
  return y;
}

TEST(Softmax, ValuesMatchDoubleOnEveryAxis) {
  const Shape shape{3, 4, 5};
  const Tensor x = Tensor::uniform(shape, -4.0, 4.0, 21, DType::kFloat64);
  const auto xs = x.to_vector<double>();
  for (int axis : {0, 1, 2}) {
    const auto want = softmax_3d_double(xs, shape, axis);
    const auto got = ops::softmax(x, axis).to_vector<double>();
    const auto got_log = ops::log_softmax(x, axis).to_vector<double>();
    for (std::size_t i = 0; i < want.size(); ++i) {
      EXPECT_NEAR(got[i], want[i], 1e-15) << "axis " << axis;
      EXPECT_NEAR(got_log[i], std::log(want[i]), 1e-14) << "axis " << axis;
    }
  }
  // Negative axes count from the end.
  EXPECT_EQ(ops::softmax(x, -1).to_vector<double>(), ops::softmax(x, 2).to_vector<double>());
  EXPECT_EQ(ops::log_softmax(x, -3).to_vector<double>(), ops::log_softmax(x, 0).to_vector<double>());
}

TEST(Softmax, Float32RowsSumToOneOnLargeInputs) {
  // 512 x 300 along the last axis and 70 x 130 x 20 along the middle one: parallel paths, tiles.
  const Tensor a = Tensor::randn({512, 300}, 3);
  const auto ya = ops::softmax(a).to_vector<float>();
  for (int r = 0; r < 512; r += 37) {
    double total = 0.0;
    for (int c = 0; c < 300; ++c) total += ya[static_cast<std::size_t>(r * 300 + c)];
    EXPECT_NEAR(total, 1.0, 1e-6);
  }
  const Tensor b = Tensor::randn({70, 130, 20}, 4);
  const Tensor yb = ops::softmax(b, 1);
  const Tensor expect = ops::softmax(b.to(DType::kFloat64), 1);
  EXPECT_LT(testing::max_abs_diff(yb, expect), 1e-7);
}

TEST(Softmax, StableAtExtremeLogits) {
  const Tensor x = Tensor::from_vector(std::vector<float>{1000.0f, -1000.0f}, {1, 2});
  EXPECT_EQ(ops::softmax(x).to_vector<float>(), (std::vector<float>{1.0f, 0.0f}));
  EXPECT_EQ(ops::log_softmax(x).to_vector<float>(), (std::vector<float>{0.0f, -2000.0f}));
  // Huge equal logits: an unshifted exp would overflow to inf/inf = NaN.
  const Tensor same = Tensor::full({1, 4}, 3e38, DType::kFloat32);
  for (float v : ops::softmax(same).to_vector<float>()) EXPECT_EQ(v, 0.25f);
  for (float v : ops::log_softmax(same).to_vector<float>()) EXPECT_FLOAT_EQ(v, -std::log(4.0f));
  // log_softmax keeps precision where log(softmax) would give log(0) = -inf.
  const Tensor far = Tensor::from_vector(std::vector<double>{0.0, -800.0}, {2});
  EXPECT_EQ(ops::log_softmax(far).to_vector<double>()[1], -800.0);
  EXPECT_EQ(ops::softmax(far).to_vector<double>()[1], 0.0);
}

TEST(Softmax, GradcheckAxis0AndLastOf3d) {
  for (int axis : {0, 1, -1}) {
    EXPECT_TRUE(gradcheck([axis](const std::vector<Tensor>& in) { return ops::softmax(in[0], axis); },
                          {f64({3, 4, 5}, 31)}))
        << "softmax axis " << axis;
    EXPECT_TRUE(gradcheck([axis](const std::vector<Tensor>& in) { return ops::log_softmax(in[0], axis); },
                          {f64({3, 4, 5}, 32)}))
        << "log_softmax axis " << axis;
  }
}

TEST(Softmax, BackwardMatchesClosedForm) {
  // dx = y ⊙ (dy − ⟨dy, y⟩) for softmax; dx = dy − y_soft·Σdy for log_softmax.
  Tensor x = Tensor::from_vector(std::vector<double>{0.1, 2.0, -1.0}, {3}).set_requires_grad(true);
  const std::vector<double> dy{1.0, -2.0, 0.5};
  const auto y = ops::softmax(x.detach()).to_vector<double>();
  ops::softmax(x).backward(Tensor::from_vector(dy, {3}));
  const double dot = dy[0] * y[0] + dy[1] * y[1] + dy[2] * y[2];
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(x.grad().to_vector<double>()[i], y[i] * (dy[i] - dot), 1e-15);
  x.zero_grad();
  ops::log_softmax(x).backward(Tensor::from_vector(dy, {3}));
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(x.grad().to_vector<double>()[i], dy[i] - y[i] * (-0.5), 1e-15);
}

TEST(Softmax, SymbolicAndErrors) {
  const Tensor y = ops::softmax(Tensor::symbolic({kUnknownDim, 10}));
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 10}));
  EXPECT_TRUE(ops::log_softmax(Tensor::symbolic({kUnknownDim, 3, 4}), 1).is_symbolic());
  expect_error<ValueError>([] { (void)ops::softmax(Tensor::zeros({2, 5}), 2); },
                           {"ops::softmax", "axis 2", "[2, 5]"});
  expect_error<ValueError>([] { (void)ops::log_softmax(Tensor::from_vector(std::vector<int64_t>{1}, {1})); },
                           {"ops::log_softmax", "int64"});
}

TEST(Dropout, GradcheckWithFixedSeed) {
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::dropout(in[0], 0.3, true, 77); },
                        {f64({6, 7}, 41)}));
}

TEST(Dropout, GradientIsMaskOverKeepProbability) {
  const double rate = 0.25;
  Tensor x = Tensor::uniform({40, 50}, 0.5, 1.5, 5).set_requires_grad(true);
  const Tensor y = ops::dropout(x, rate, true, 9);
  y.backward(Tensor::ones({40, 50}));
  const auto xs = x.detach().to_vector<float>();
  const auto ys = y.to_vector<float>();
  const auto gs = x.grad().to_vector<float>();
  const float scale = static_cast<float>(1.0 / (1.0 - rate));
  int zeros = 0;
  for (std::size_t i = 0; i < ys.size(); ++i) {
    if (ys[i] == 0.0f) {
      ++zeros;
      EXPECT_EQ(gs[i], 0.0f);
    } else {
      EXPECT_EQ(gs[i], scale);
      EXPECT_EQ(ys[i], xs[i] * scale);
    }
  }
  EXPECT_GT(zeros, 0);
}

TEST(Dropout, FractionZeroedIsCloseToRate) {
  const Tensor x = Tensor::ones({100000});
  for (double rate : {0.1, 0.5, 0.9}) {
    const auto y = ops::dropout(x, rate, true, 1234).to_vector<float>();
    int64_t zeros = 0;
    double total = 0.0;
    for (float v : y) {
      zeros += v == 0.0f;
      total += v;
    }
    // The binomial's standard deviation is at most 0.0016 here: 0.01 is more than 6 of them.
    EXPECT_NEAR(static_cast<double>(zeros) / 1e5, rate, 0.01) << "rate " << rate;
    EXPECT_NEAR(total / 1e5, 1.0, 0.05) << "inverted dropout keeps the mean, rate " << rate;
  }
}

TEST(Dropout, IdentityInInferenceOrAtRateZero) {
  const Tensor x = Tensor::randn({3, 4}, 2);
  EXPECT_TRUE(ops::dropout(x, 0.5, false, 1).same(x));
  EXPECT_TRUE(ops::dropout(x, 0.0, true, 1).same(x));
}

TEST(Dropout, DeterministicPerSeedAndIndependentOfThreads) {
  const Tensor x = Tensor::randn({300, 400}, 6);
  const auto a = ops::dropout(x, 0.4, true, 5).to_vector<float>();
  const auto b = ops::dropout(x, 0.4, true, 5).to_vector<float>();
  const auto c = ops::dropout(x, 0.4, true, 6).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  const int threads = get_num_threads();
  set_num_threads(1);
  const auto serial = ops::dropout(x, 0.4, true, 5).to_vector<float>();
  set_num_threads(threads);
  EXPECT_EQ(a, serial);
}

TEST(Dropout, RateOutsideRangeIsValueError) {
  const Tensor x = Tensor::zeros({2, 3});
  for (double bad : {1.0, -0.1, 1.5, static_cast<double>(NAN)}) {
    expect_error<ValueError>([&] { (void)ops::dropout(x, bad, true, 1); }, {"ops::dropout", "[0, 1)", "[2, 3]"});
  }
  // Checked in inference too, so a bad rate surfaces at once.
  expect_error<ValueError>([&] { (void)ops::dropout(x, 1.0, false, 1); }, {"ops::dropout"});
}

TEST(Dropout, SymbolicInTraining) {
  const Tensor y = ops::dropout(Tensor::symbolic({kUnknownDim, 8}), 0.5, true, 1);
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 8}));
}

TEST(Embedding, GathersRowsForAnyIndexShape) {
  const Tensor table = Tensor::from_vector(std::vector<float>{0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{3, 0, 3, 1, 2, 2}, {2, 3});
  const Tensor y = ops::embedding(table, idx);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{30, 31, 0, 1, 30, 31, 10, 11, 20, 21, 20, 21}));
  const Tensor scalar_idx = ops::embedding(table, Tensor::from_vector(std::vector<int64_t>{2}, {}));
  EXPECT_EQ(scalar_idx.shape(), (Shape{2}));
  EXPECT_EQ(scalar_idx.to_vector<float>(), (std::vector<float>{20, 21}));
}

TEST(Embedding, GradientScatterAddsRepeatedIndices) {
  Tensor table = Tensor::zeros({4, 2}, DType::kFloat64).set_requires_grad(true);
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{3, 0, 3, 3}, {4});
  ops::embedding(table, idx).backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}, {4, 2}));
  // Row 3 collects rows 0, 2, 3 of dy; row 0 collects row 1; rows 1, 2 get nothing.
  EXPECT_EQ(table.grad().to_vector<double>(), (std::vector<double>{3, 4, 0, 0, 0, 0, 1 + 5 + 7, 2 + 6 + 8}));
}

TEST(Embedding, GradcheckWithRepeatedIndices) {
  const Tensor idx = Tensor::from_vector(std::vector<int64_t>{1, 4, 1, 0, 1, 4}, {2, 3});
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::embedding(in[0], in[1]); },
                        {f64({5, 3}, 51), idx}));
}

TEST(Embedding, LargeScatterMatchesSerialSum) {
  // 20000 lookups into 7 rows of 64: the parallel column split must equal a plain loop.
  const int64_t n = 20000, V = 7, D = 64;
  std::vector<int64_t> ids(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<std::size_t>(i)] = (i * 5 + i / 3) % V;
  Tensor table = Tensor::randn({V, D}, 1, DType::kFloat64).set_requires_grad(true);
  const Tensor dy = Tensor::randn({n, D}, 2, DType::kFloat64);
  ops::embedding(table, Tensor::from_vector(ids, {n})).backward(dy);
  std::vector<double> want(static_cast<std::size_t>(V * D), 0.0);
  const double* g = dy.data<double>();
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t d = 0; d < D; ++d) want[static_cast<std::size_t>(ids[static_cast<std::size_t>(i)] * D + d)] += g[i * D + d];
  }
  EXPECT_EQ(table.grad().to_vector<double>(), want);
}

TEST(Embedding, ErrorsNameIndexTableAndOp) {
  const Tensor table = Tensor::zeros({5, 3});
  expect_error<ValueError>(
      [&] { (void)ops::embedding(table, Tensor::from_vector(std::vector<int64_t>{0, 7, 1}, {3})); },
      {"ops::embedding", "index 7", "V = 5", "[5, 3]"});
  expect_error<ValueError>(
      [&] { (void)ops::embedding(table, Tensor::from_vector(std::vector<int64_t>{-1}, {1})); },
      {"ops::embedding", "index -1", "V = 5"});
  expect_error<ValueError>([&] { (void)ops::embedding(table, Tensor::zeros({2})); },
                           {"ops::embedding", "indices must be int64", "float32"});
  expect_error<ShapeError>(
      [&] { (void)ops::embedding(Tensor::zeros({5}), Tensor::from_vector(std::vector<int64_t>{0}, {1})); },
      {"ops::embedding", "[V, D]", "[5]"});
}

TEST(Embedding, SymbolicIndicesGiveSymbolicRows) {
  const Tensor y = ops::embedding(Tensor::zeros({10, 4}), Tensor::symbolic({kUnknownDim, 6}, DType::kInt64));
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(y.shape(), (Shape{kUnknownDim, 6, 4}));
}

// Mean over rows of −log softmax(logits)[label], in double without the max shift.
double cross_entropy_double(const std::vector<double>& x, const std::vector<int64_t>& labels, int64_t C) {
  double total = 0.0;
  for (std::size_t n = 0; n < labels.size(); ++n) {
    double s = 0.0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(x[n * C + c]);
    total += std::log(s) - x[n * C + static_cast<std::size_t>(labels[n])];
  }
  return total / static_cast<double>(labels.size());
}

TEST(SparseSoftmaxCrossEntropy, ValueMatchesDouble) {
  const Tensor logits = Tensor::uniform({6, 5}, -3.0, 3.0, 61, DType::kFloat64);
  const std::vector<int64_t> labels{0, 4, 2, 2, 1, 3};
  const Tensor loss = ops::sparse_softmax_cross_entropy(logits, Tensor::from_vector(labels, {6}));
  EXPECT_EQ(loss.shape(), Shape{});
  EXPECT_NEAR(loss.item(), cross_entropy_double(logits.to_vector<double>(), labels, 5), 1e-14);
  // float32 logits: a float32 loss, rounded once from the double accumulation.
  const Tensor loss32 = ops::sparse_softmax_cross_entropy(logits.to(DType::kFloat32), Tensor::from_vector(labels, {6}));
  EXPECT_EQ(loss32.dtype(), DType::kFloat32);
  EXPECT_NEAR(loss32.item(), loss.item(), 1e-6);
}

TEST(SparseSoftmaxCrossEntropy, StableAtExtremeLogits) {
  const Tensor logits = Tensor::from_vector(std::vector<float>{1000.0f, -1000.0f, -1000.0f, 1000.0f}, {2, 2});
  const Tensor right = Tensor::from_vector(std::vector<int64_t>{0, 1}, {2});
  const Tensor wrong = Tensor::from_vector(std::vector<int64_t>{1, 0}, {2});
  EXPECT_EQ(ops::sparse_softmax_cross_entropy(logits, right).item(), 0.0);
  EXPECT_EQ(ops::sparse_softmax_cross_entropy(logits, wrong).item(), 2000.0);
}

TEST(SparseSoftmaxCrossEntropy, Gradcheck) {
  const Tensor labels = Tensor::from_vector(std::vector<int64_t>{2, 0, 3, 3}, {4});
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) { return ops::sparse_softmax_cross_entropy(in[0], in[1]); },
      {f64({4, 5}, 71), labels}));
}

TEST(SparseSoftmaxCrossEntropy, GradientIsScaledSoftmaxMinusOneHot) {
  const int64_t N = 3, C = 4;
  Tensor logits = Tensor::uniform({N, C}, -2.0, 2.0, 81, DType::kFloat64).set_requires_grad(true);
  const std::vector<int64_t> labels{1, 3, 0};
  const Tensor loss = ops::sparse_softmax_cross_entropy(logits, Tensor::from_vector(labels, {N}));
  loss.backward(Tensor::scalar(3.0, DType::kFloat64));  // an upstream scale of 3
  const auto p = ops::softmax(logits.detach()).to_vector<double>();
  const auto g = logits.grad().to_vector<double>();
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c = 0; c < C; ++c) {
      const std::size_t i = static_cast<std::size_t>(n * C + c);
      const double onehot = c == labels[static_cast<std::size_t>(n)] ? 1.0 : 0.0;
      EXPECT_NEAR(g[i], 3.0 * (p[i] - onehot) / N, 1e-15);
    }
  }
}

TEST(SparseSoftmaxCrossEntropy, LargeBatchMatchesDouble) {
  const int64_t N = 2048, C = 37;  // past the parallel grain
  const Tensor logits = Tensor::randn({N, C}, 91);
  std::vector<int64_t> labels(static_cast<std::size_t>(N));
  for (int64_t n = 0; n < N; ++n) labels[static_cast<std::size_t>(n)] = (n * 7) % C;
  const double want = cross_entropy_double(logits.to_vector<double>(), labels, C);
  EXPECT_NEAR(ops::sparse_softmax_cross_entropy(logits, Tensor::from_vector(labels, {N})).item(), want, 1e-6);
}

TEST(SparseSoftmaxCrossEntropy, ErrorsNameLabelClassesAndShapes) {
  const Tensor logits = Tensor::zeros({3, 4});
  expect_error<ValueError>(
      [&] {
        (void)ops::sparse_softmax_cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 4, 1}, {3}));
      },
      {"ops::sparse_softmax_cross_entropy", "label 4", "[0, 4)", "C = 4", "[3, 4]"});
  expect_error<ValueError>(
      [&] {
        (void)ops::sparse_softmax_cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, -2, 1}, {3}));
      },
      {"label -2"});
  expect_error<ShapeError>(
      [&] {
        (void)ops::sparse_softmax_cross_entropy(logits, Tensor::from_vector(std::vector<int64_t>{0, 1}, {2}));
      },
      {"ops::sparse_softmax_cross_entropy", "logits [3, 4]", "labels [2]"});
  expect_error<ShapeError>(
      [&] {
        (void)ops::sparse_softmax_cross_entropy(Tensor::zeros({3, 4, 2}),
                                                Tensor::from_vector(std::vector<int64_t>{0, 1, 2}, {3}));
      },
      {"[3, 4, 2]"});
  expect_error<ValueError>([&] { (void)ops::sparse_softmax_cross_entropy(logits, Tensor::zeros({3})); },
                           {"labels must be int64"});
}

TEST(SparseSoftmaxCrossEntropy, SymbolicBatchGivesSymbolicScalar) {
  const Tensor loss = ops::sparse_softmax_cross_entropy(Tensor::symbolic({kUnknownDim, 10}),
                                                        Tensor::symbolic({kUnknownDim}, DType::kInt64));
  EXPECT_TRUE(loss.is_symbolic());
  EXPECT_EQ(loss.shape(), Shape{});
}

}  // namespace
}  // namespace normnet
