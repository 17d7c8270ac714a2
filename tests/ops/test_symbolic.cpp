// Shape inference for every op of include/normnet/ops/*.h: on symbolic inputs with an unknown
// batch (printed "None") each op returns a symbolic result of the right shape and dtype, and
// shapes that do not fit throw ShapeError or ValueError naming the op and the full shapes.
#include <gtest/gtest.h>

#include <functional>
#include <initializer_list>
#include <string>

#include "normnet/ops.h"

namespace normnet {
namespace {

constexpr int64_t N = kUnknownDim;

Tensor sym(Shape shape, DType dtype = DType::kFloat32) { return Tensor::symbolic(std::move(shape), dtype); }

// y is symbolic, prints as `shape` ("[None, 3]") and has `dtype`.
::testing::AssertionResult symbolic_as(const Tensor& y, const std::string& shape, DType dtype = DType::kFloat32) {
  if (!y.defined()) return ::testing::AssertionFailure() << "result is undefined";
  if (!y.is_symbolic()) return ::testing::AssertionFailure() << "result " << y << " has values";
  if (shape_to_string(y.shape()) != shape) {
    return ::testing::AssertionFailure() << "shape " << shape_to_string(y.shape()) << ", expected " << shape;
  }
  if (y.dtype() != dtype) {
    return ::testing::AssertionFailure() << "dtype " << dtype_name(y.dtype()) << ", expected " << dtype_name(dtype);
  }
  return ::testing::AssertionSuccess();
}

enum class Kind { kShape, kValue, kShapeOrValue };

// fn throws the error kind, and its message contains every part.
::testing::AssertionResult throws(Kind kind, const std::function<void()>& fn, std::initializer_list<std::string> parts) {
  std::string message;
  bool is_shape = false, is_value = false;
  try {
    fn();
    return ::testing::AssertionFailure() << "no exception";
  } catch (const ShapeError& e) {
    is_shape = true;
    message = e.what();
  } catch (const ValueError& e) {
    is_value = true;
    message = e.what();
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "not a ShapeError/ValueError: " << e.what();
  }
  if (kind == Kind::kShape && !is_shape) return ::testing::AssertionFailure() << "ValueError, expected ShapeError: " << message;
  if (kind == Kind::kValue && !is_value) return ::testing::AssertionFailure() << "ShapeError, expected ValueError: " << message;
  for (const std::string& part : parts) {
    if (message.find(part) == std::string::npos) {
      return ::testing::AssertionFailure() << "message \"" << message << "\" lacks \"" << part << "\"";
    }
  }
  return ::testing::AssertionSuccess();
}

// ------------------------------------------------------------------------------- elementwise

using BinaryFn = Tensor (*)(const Tensor&, const Tensor&);
struct NamedBinary {
  const char* name;
  BinaryFn fn;
};
const NamedBinary kBinaryOps[] = {
    {"ops::add", ops::add},         {"ops::sub", ops::sub},         {"ops::mul", ops::mul},
    {"ops::div", ops::div},         {"ops::maximum", ops::maximum}, {"ops::minimum", ops::minimum},
    {"ops::pow", static_cast<BinaryFn>(ops::pow)},
};

TEST(SymbolicElementwise, BinaryOpsBroadcastWithAnUnknownBatch) {
  for (const NamedBinary& op : kBinaryOps) {
    EXPECT_TRUE(symbolic_as(op.fn(sym({N, 3}), sym({3})), "[None, 3]")) << op.name;
    EXPECT_TRUE(symbolic_as(op.fn(sym({N, 1, 4}), sym({5, 1})), "[None, 5, 4]")) << op.name;
    EXPECT_TRUE(symbolic_as(op.fn(sym({1}), sym({N, 2})), "[None, 2]")) << op.name;
    // An unknown extent against a known one takes the known one (it can only be 1 or equal).
    EXPECT_TRUE(symbolic_as(op.fn(sym({N, 3}), sym({5, 3})), "[5, 3]")) << op.name;
    EXPECT_TRUE(symbolic_as(op.fn(sym({N, 3}, DType::kFloat64), sym({N, 1}, DType::kFloat64)), "[None, 3]",
                            DType::kFloat64))
        << op.name;
    // A symbolic input with a real one (a layer's weight) is still shape inference only.
    EXPECT_TRUE(symbolic_as(op.fn(sym({N, 3}), Tensor::ones({3})), "[None, 3]")) << op.name;
    EXPECT_TRUE(symbolic_as(op.fn(Tensor::ones({3}), sym({N, 3})), "[None, 3]")) << op.name;
  }
}

TEST(SymbolicElementwise, OperatorsAndScalarForms) {
  const Tensor x = sym({N, 4});
  EXPECT_TRUE(symbolic_as(x + x, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(x - Tensor::ones({4}), "[None, 4]"));
  EXPECT_TRUE(symbolic_as(x * x, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(x / x, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(-x, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(x + 1.0, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(x - 1.0, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(x * 2.0, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(x / 2.0, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(1.0 + x, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(1.0 - x, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(2.0 * x, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(2.0 / x, "[None, 4]"));
  EXPECT_TRUE(symbolic_as(ops::add(x, 1.0), "[None, 4]"));
  EXPECT_TRUE(symbolic_as(ops::mul(x, 3.0), "[None, 4]"));
}

TEST(SymbolicElementwise, UnaryOpsKeepShapeAndDtype) {
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    const Tensor x = sym({N, 2, 3}, dtype);
    const std::vector<std::pair<const char*, Tensor>> results = {
        {"neg", ops::neg(x)},         {"exp", ops::exp(x)},         {"log", ops::log(x)},
        {"sqrt", ops::sqrt(x)},       {"square", ops::square(x)},   {"abs", ops::abs(x)},
        {"sign", ops::sign(x)},       {"pow", ops::pow(x, 3.0)},    {"relu", ops::relu(x)},
        {"sigmoid", ops::sigmoid(x)}, {"tanh", ops::tanh(x)},       {"clip", ops::clip(x, -1.0, 1.0)},
    };
    for (const auto& [name, y] : results) EXPECT_TRUE(symbolic_as(y, "[None, 2, 3]", dtype)) << name;
  }
}

TEST(SymbolicElementwise, CastAndBroadcastTo) {
  EXPECT_TRUE(symbolic_as(ops::cast(sym({N, 3}), DType::kFloat64), "[None, 3]", DType::kFloat64));
  EXPECT_TRUE(symbolic_as(sym({N, 3}).to(DType::kFloat64), "[None, 3]", DType::kFloat64));
  EXPECT_TRUE(symbolic_as(ops::broadcast_to(sym({3}), {N, 3}), "[None, 3]"));
  EXPECT_TRUE(symbolic_as(ops::broadcast_to(sym({N, 1}), {N, 4}), "[None, 4]"));
}

TEST(SymbolicElementwise, BroadcastErrorsNameTheOpAndBothShapes) {
  for (const NamedBinary& op : kBinaryOps) {
    const std::string name = op.name;
    EXPECT_TRUE(throws(Kind::kShape, [&] { (void)op.fn(Tensor::zeros({2, 3}), Tensor::zeros({4})); },
                       {name + ": shapes [2, 3] and [4] cannot be broadcast"}));
    EXPECT_TRUE(throws(Kind::kShape, [&] { (void)op.fn(sym({N, 3}), sym({4})); },
                       {name + ": shapes [None, 3] and [4] cannot be broadcast"}));
    EXPECT_TRUE(throws(Kind::kShape, [&] { (void)op.fn(sym({N, 2, 3}), sym({5, 4, 1})); },
                       {name + ": shapes [None, 2, 3] and [5, 4, 1] cannot be broadcast (axis -2: 2 vs 4)"}));
  }
  EXPECT_TRUE(throws(Kind::kShape, [] { (void)(Tensor::zeros({2, 3}) + Tensor::zeros({4})); },
                     {"ops::add: shapes [2, 3] and [4] cannot be broadcast (axis -1: 3 vs 4)"}));
  EXPECT_TRUE(throws(Kind::kShape, [] { (void)(sym({N, 3}) * sym({2})); }, {"ops::mul", "[None, 3]", "[2]"}));
  EXPECT_TRUE(throws(Kind::kShape, [] { (void)ops::broadcast_to(sym({N, 3}), {N, 4}); },
                     {"ops::broadcast_to", "[None, 3]", "[None, 4]"}));
}

TEST(SymbolicElementwise, DtypeMismatchIsAValueError) {
  EXPECT_TRUE(throws(Kind::kValue, [] { (void)ops::add(sym({N, 3}), sym({N, 3}, DType::kFloat64)); },
                     {"ops::add", "float32", "float64", "[None, 3]"}));
}

// ----------------------------------------------------------------------------------- reduce

TEST(SymbolicReduce, ReductionsOverAxesAndAll) {
  const Tensor x = sym({N, 3, 4});
  EXPECT_TRUE(symbolic_as(ops::sum(x), "[]"));
  EXPECT_TRUE(symbolic_as(ops::mean(x), "[]"));
  EXPECT_TRUE(symbolic_as(ops::max(x), "[]"));
  EXPECT_TRUE(symbolic_as(ops::sum(x, {1}), "[None, 4]"));
  EXPECT_TRUE(symbolic_as(ops::sum(x, {-1}, /*keepdims=*/true), "[None, 3, 1]"));
  EXPECT_TRUE(symbolic_as(ops::mean(x, {1, 2}), "[None]"));
  EXPECT_TRUE(symbolic_as(ops::mean(x, {0}), "[3, 4]"));
  EXPECT_TRUE(symbolic_as(ops::max(x, {2}, true), "[None, 3, 1]"));
  EXPECT_TRUE(symbolic_as(ops::max(x, {0, 1}, true), "[1, 1, 4]"));
  EXPECT_TRUE(symbolic_as(ops::sum(x, {}), "[None, 3, 4]"));
  EXPECT_TRUE(symbolic_as(ops::argmax(x), "[None, 3]", DType::kInt64));
  EXPECT_TRUE(symbolic_as(ops::argmax(x, 1), "[None, 4]", DType::kInt64));
}

TEST(SymbolicReduce, AxisOutOfRangeNamesOpAndShape) {
  const Tensor x = sym({N, 3, 4});
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::sum(x, {3}); }, {"ops::sum", "axis 3", "[None, 3, 4]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::mean(x, {-4}); }, {"ops::mean", "axis -4", "[None, 3, 4]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::max(x, {5}); }, {"ops::max", "[None, 3, 4]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::argmax(x, 3); }, {"ops::argmax", "[None, 3, 4]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::sum(x, {1, -2}); }, {"ops::sum", "[None, 3, 4]"}));
}

// ------------------------------------------------------------------------------- shape ops

TEST(SymbolicShapeOps, EveryMovementKeepsTheUnknownBatch) {
  const Tensor x = sym({N, 28, 28, 1});
  EXPECT_TRUE(symbolic_as(ops::reshape(x, {-1, 784}), "[None, 784]"));
  EXPECT_TRUE(symbolic_as(ops::reshape(x, {-1, 28, 28}), "[None, 28, 28]"));
  EXPECT_TRUE(symbolic_as(ops::flatten(x), "[None, 784]"));
  EXPECT_TRUE(symbolic_as(ops::unsqueeze(x, 1), "[None, 1, 28, 28, 1]"));
  EXPECT_TRUE(symbolic_as(ops::unsqueeze(x, -1), "[None, 28, 28, 1, 1]"));
  EXPECT_TRUE(symbolic_as(ops::squeeze(x, -1), "[None, 28, 28]"));
  EXPECT_TRUE(symbolic_as(ops::permute(x, {0, 3, 1, 2}), "[None, 1, 28, 28]"));
  EXPECT_TRUE(symbolic_as(ops::transpose(x, 1, 2), "[None, 28, 28, 1]"));
  EXPECT_TRUE(symbolic_as(ops::transpose(x, 0, 3), "[1, 28, 28, None]"));
  EXPECT_TRUE(symbolic_as(ops::concat({x, sym({N, 28, 28, 2})}, -1), "[None, 28, 28, 3]"));
  EXPECT_TRUE(symbolic_as(ops::concat({x, x}, 0), "[None, 28, 28, 1]"));
  EXPECT_TRUE(symbolic_as(ops::slice(x, 1, 2, -2), "[None, 24, 28, 1]"));
  EXPECT_TRUE(symbolic_as(ops::slice(x, 0, 0, 5), "[None, 28, 28, 1]"));
  EXPECT_TRUE(symbolic_as(ops::flatten(sym({N, 4}, DType::kInt64)), "[None, 4]", DType::kInt64));
}

TEST(SymbolicShapeOps, MismatchesNameOpAndShapes) {
  const Tensor x = sym({N, 784});
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::reshape(x, {-1, 100}); }, {"ops::reshape", "[None, 784]", "100"}));
  EXPECT_TRUE(throws(Kind::kShapeOrValue, [&] { (void)ops::squeeze(x, 1); }, {"ops::squeeze", "[None, 784]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::unsqueeze(x, 3); }, {"ops::unsqueeze", "[None, 784]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::permute(x, {1, 1}); }, {"ops::permute", "[None, 784]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::transpose(x, 0, 2); }, {"ops::transpose", "[None, 784]"}));
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::concat({x, sym({N, 10, 2})}, 1); },
                     {"ops::concat", "tensor 1", "[None, 10, 2]", "[None, 784]"}));
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::concat({sym({N, 2, 3}), sym({N, 4, 3})}, 2); },
                     {"ops::concat", "tensor 1", "[None, 4, 3]", "[None, 2, 3]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::slice(x, 2, 0, 1); }, {"ops::slice", "[None, 784]"}));
}

// ------------------------------------------------------------------------------------ nn ops

TEST(SymbolicNN, SoftmaxDropoutEmbeddingCrossEntropy) {
  const Tensor logits = sym({N, 10});
  EXPECT_TRUE(symbolic_as(ops::softmax(logits), "[None, 10]"));
  EXPECT_TRUE(symbolic_as(ops::log_softmax(logits, 0), "[None, 10]"));
  EXPECT_TRUE(symbolic_as(ops::softmax(sym({N, 5, 7}, DType::kFloat64), 1), "[None, 5, 7]", DType::kFloat64));
  EXPECT_TRUE(symbolic_as(ops::dropout(logits, 0.5, /*training=*/true, 1), "[None, 10]"));
  EXPECT_TRUE(symbolic_as(ops::dropout(logits, 0.5, /*training=*/false, 1), "[None, 10]"));
  const Tensor table = Tensor::randn({100, 8}, 1);  // a real weight, as in an Embedding layer
  EXPECT_TRUE(symbolic_as(ops::embedding(table, sym({N, 5}, DType::kInt64)), "[None, 5, 8]"));
  EXPECT_TRUE(symbolic_as(ops::embedding(sym({100, 8}), sym({N}, DType::kInt64)), "[None, 8]"));
  EXPECT_TRUE(symbolic_as(ops::sparse_softmax_cross_entropy(logits, sym({N}, DType::kInt64)), "[]"));
}

TEST(SymbolicNN, MismatchesNameOpAndShapes) {
  const Tensor logits = sym({N, 10});
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::softmax(logits, 2); }, {"ops::softmax", "[None, 10]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::log_softmax(logits, -3); }, {"ops::log_softmax", "[None, 10]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::dropout(logits, 1.5, true, 1); }, {"ops::dropout", "[None, 10]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::embedding(Tensor::zeros({100, 8}), sym({N, 5})); },
                     {"ops::embedding", "int64", "[None, 5]"}));
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::embedding(Tensor::zeros({100}), sym({N, 5}, DType::kInt64)); },
                     {"ops::embedding", "[100]", "[None, 5]"}));
  EXPECT_TRUE(throws(Kind::kShape,
                     [&] { (void)ops::sparse_softmax_cross_entropy(logits, sym({N, 2}, DType::kInt64)); },
                     {"ops::sparse_softmax_cross_entropy", "[None, 10]", "[None, 2]"}));
  EXPECT_TRUE(throws(Kind::kShape,
                     [&] { (void)ops::sparse_softmax_cross_entropy(Tensor::zeros({4, 10}), Tensor::zeros({3}, DType::kInt64)); },
                     {"ops::sparse_softmax_cross_entropy", "[4, 10]", "[3]"}));
}

// ----------------------------------------------------------------------------------- linalg

TEST(SymbolicLinalg, MatmulAndLinear) {
  const Tensor x = sym({N, 784});
  const Tensor kernel = Tensor::zeros({784, 128});  // real weights, as a Dense layer holds them
  EXPECT_TRUE(symbolic_as(ops::matmul(x, kernel), "[None, 128]"));
  EXPECT_TRUE(symbolic_as(ops::matmul(x, sym({784, 10})), "[None, 10]"));
  EXPECT_TRUE(symbolic_as(ops::matmul(sym({N, 5, 4}), sym({4, 3})), "[None, 5, 3]"));
  EXPECT_TRUE(symbolic_as(ops::matmul(sym({N, 5, 4}), sym({N, 4, 3})), "[None, 5, 3]"));
  EXPECT_TRUE(symbolic_as(ops::matmul(sym({N, 4}, DType::kFloat64), sym({4, 2}, DType::kFloat64)), "[None, 2]",
                          DType::kFloat64));
  EXPECT_TRUE(symbolic_as(ops::linear(x, kernel, Tensor::zeros({128})), "[None, 128]"));
  EXPECT_TRUE(symbolic_as(ops::linear(x, kernel, Tensor()), "[None, 128]"));
  EXPECT_TRUE(symbolic_as(ops::linear(sym({N, 7, 784}), kernel, Tensor()), "[None, 7, 128]"));
  // Shape inference records nothing on the tape, even when a weight requires grad.
  Tensor weight = Tensor::zeros({784, 10}).set_requires_grad(true);
  Tensor y = ops::linear(x, weight, Tensor());
  EXPECT_TRUE(symbolic_as(y, "[None, 10]"));
  EXPECT_FALSE(y.impl()->grad_fn);
}

TEST(SymbolicLinalg, InnerDimensionMismatchNamesBothShapes) {
  EXPECT_TRUE(throws(Kind::kShape, [] { (void)ops::matmul(sym({N, 784}), sym({128, 10})); },
                     {"ops::matmul: shapes [None, 784] and [128, 10] do not match on the inner dimension (784 vs 128)"}));
  EXPECT_TRUE(throws(Kind::kShape, [] { (void)ops::matmul(Tensor::zeros({32, 784}), Tensor::zeros({128, 10})); },
                     {"ops::matmul: shapes [32, 784] and [128, 10] do not match on the inner dimension (784 vs 128)"}));
  EXPECT_TRUE(throws(Kind::kShape, [] { (void)ops::matmul(sym({N, 2, 5, 4}), sym({3, 4, 2})); },
                     {"ops::matmul", "[None, 2, 5, 4]", "[3, 4, 2]"}));
  EXPECT_TRUE(throws(Kind::kShape, [] { (void)ops::linear(sym({N, 784}), sym({100, 10}), Tensor()); },
                     {"ops::linear", "[None, 784]", "[100, 10]"}));
  EXPECT_TRUE(throws(Kind::kShape, [] { (void)ops::linear(sym({N, 784}), sym({784, 10}), sym({5})); },
                     {"ops::linear", "[5]", "[784, 10]"}));
}

// ------------------------------------------------------------------------------ conv / pool

TEST(SymbolicConv, ConvolutionAndPoolingOutputShapes) {
  const Tensor x = sym({N, 28, 28, 1});
  const Tensor kernel = Tensor::zeros({3, 3, 1, 8});
  const Tensor bias = Tensor::zeros({8});
  using ops::Padding;
  EXPECT_TRUE(symbolic_as(ops::conv2d(x, kernel, bias), "[None, 26, 26, 8]"));
  EXPECT_TRUE(symbolic_as(ops::conv2d(x, kernel, Tensor(), {1, 1}, Padding::kSame), "[None, 28, 28, 8]"));
  EXPECT_TRUE(symbolic_as(ops::conv2d(x, kernel, bias, {2, 2}, Padding::kSame), "[None, 14, 14, 8]"));
  EXPECT_TRUE(symbolic_as(ops::conv2d(x, kernel, bias, {2, 3}, Padding::kValid), "[None, 13, 9, 8]"));
  EXPECT_TRUE(symbolic_as(ops::conv2d(sym({N, 7, 7, 1}), sym({3, 3, 1, 4}), Tensor(), {2, 2}, Padding::kSame),
                          "[None, 4, 4, 4]"));
  const Tensor h = sym({N, 27, 28, 8});
  EXPECT_TRUE(symbolic_as(ops::max_pool2d(h, {2, 2}), "[None, 13, 14, 8]"));
  EXPECT_TRUE(symbolic_as(ops::max_pool2d(h, {2, 2}, {0, 0}, Padding::kSame), "[None, 14, 14, 8]"));
  EXPECT_TRUE(symbolic_as(ops::avg_pool2d(h, {3, 3}, {1, 1}), "[None, 25, 26, 8]"));
  EXPECT_TRUE(symbolic_as(ops::avg_pool2d(h, {3, 3}, {2, 2}, Padding::kSame), "[None, 14, 14, 8]"));
}

TEST(SymbolicConv, MismatchesNameOpAndShapes) {
  const Tensor x = sym({N, 28, 28, 1});
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::conv2d(x, Tensor::zeros({3, 3, 3, 8}), Tensor()); },
                     {"ops::conv2d", "[None, 28, 28, 1]", "[3, 3, 3, 8]"}));
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::conv2d(sym({N, 28, 28}), Tensor::zeros({3, 3, 1, 8}), Tensor()); },
                     {"ops::conv2d", "[None, 28, 28]"}));
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::conv2d(x, Tensor::zeros({3, 3, 1, 8}), Tensor::zeros({4})); },
                     {"ops::conv2d", "[4]", "[3, 3, 1, 8]"}));
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::conv2d(sym({N, 2, 2, 1}), Tensor::zeros({3, 3, 1, 8}), Tensor()); },
                     {"ops::conv2d", "[3, 3, 1, 8]", "[None, 2, 2, 1]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::conv2d(x, Tensor::zeros({3, 3, 1, 8}), Tensor(), {0, 1}); },
                     {"ops::conv2d", "[None, 28, 28, 1]"}));
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::max_pool2d(sym({N, 2, 2, 3}), {3, 3}); },
                     {"ops::max_pool2d", "[None, 2, 2, 3]"}));
  EXPECT_TRUE(throws(Kind::kShape, [&] { (void)ops::avg_pool2d(sym({N, 28, 28}), {2, 2}); },
                     {"ops::avg_pool2d", "[None, 28, 28]"}));
  EXPECT_TRUE(throws(Kind::kValue, [&] { (void)ops::avg_pool2d(x, {0, 2}); }, {"ops::avg_pool2d", "[None, 28, 28, 1]"}));
}

// ------------------------------------------------------------------------------ l2_normalize

TEST(SymbolicL2Normalize, EveryAxisChoiceKeepsTheShape) {
  const Tensor x = sym({N, 4, 5, 3});
  EXPECT_TRUE(symbolic_as(ops::l2_normalize(x), "[None, 4, 5, 3]"));
  EXPECT_TRUE(symbolic_as(ops::l2_normalize(x, L2NormalizeOptions().axis({1, 2})), "[None, 4, 5, 3]"));
  EXPECT_TRUE(symbolic_as(ops::l2_normalize(x, L2NormalizeOptions().all_axes()), "[None, 4, 5, 3]"));
  EXPECT_TRUE(symbolic_as(ops::l2_normalize(x, L2NormalizeOptions().whole_tensor()), "[None, 4, 5, 3]"));
  for (EpsilonMode mode : {EpsilonMode::kExact, EpsilonMode::kTensorFlow, EpsilonMode::kPyTorch, EpsilonMode::kAdditive}) {
    EXPECT_TRUE(symbolic_as(ops::l2_normalize(sym({N, 5}, DType::kFloat64), L2NormalizeOptions().mode(mode)),
                            "[None, 5]", DType::kFloat64))
        << epsilon_mode_name(mode);
  }
}

TEST(SymbolicL2Normalize, BadAxesAndEpsilonAreValueErrors) {
  EXPECT_TRUE(throws(Kind::kValue, [] { (void)ops::l2_normalize(sym({N, 5}), L2NormalizeOptions().axis({3})); },
                     {"ops::l2_normalize: axis 3 out of range for shape [None, 5]"}));
  EXPECT_TRUE(throws(Kind::kValue, [] { (void)ops::l2_normalize(sym({N, 5, 2}), L2NormalizeOptions().axis({1, -2})); },
                     {"ops::l2_normalize", "[None, 5, 2]"}));
  EXPECT_TRUE(throws(Kind::kValue, [] { (void)ops::l2_normalize(sym({N, 5}), L2NormalizeOptions().epsilon(-1.0)); },
                     {"ops::l2_normalize", "epsilon"}));
}

}  // namespace
}  // namespace normnet
