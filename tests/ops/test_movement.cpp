// Movement ops: permute/transpose, concat, slice — values, gradients (float64 finite
// differences), symbolic shapes and error messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "kernels/cpu/movement.h"
#include "normnet/autograd.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/shape_ops.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

using testing::gradcheck;

// 0, 1, 2, ... as float64 in `shape`.
Tensor counting(Shape shape) {
  return Tensor::from_vector(Tensor::arange(shape_numel(shape), DType::kFloat64).to_vector<double>(), shape);
}

// The naive kernel's answer, for comparing the planned, tiled one against.
template <class T>
std::vector<T> reference_permute(const Tensor& x, const std::vector<int>& perm) {
  std::vector<T> out(static_cast<std::size_t>(x.numel()));
  kernels::cpu::permute_reference(x.data<T>(), out.data(), static_cast<int>(perm.size()), x.shape().data(),
                                  perm.data());
  return out;
}

template <class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no exception>";
}

// ---------------------------------------------------------------------------------- permute

TEST(Permute, TwoByThreeTransposeValues) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor y = ops::permute(x, {1, 0});
  EXPECT_EQ(y.shape(), (Shape{3, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(Permute, ThreeDMovesEveryElementToItsPermutedIndex) {
  Tensor x = counting({2, 3, 4});
  Tensor y = ops::permute(x, {2, 0, 1});  // y[k][i][j] = x[i][j][k] = 12i + 4j + k
  ASSERT_EQ(y.shape(), (Shape{4, 2, 3}));
  const auto v = y.to_vector<double>();
  for (int k = 0; k < 4; ++k)
    for (int i = 0; i < 2; ++i)
      for (int j = 0; j < 3; ++j) EXPECT_EQ(v[static_cast<std::size_t>(k * 6 + i * 3 + j)], 12 * i + 4 * j + k);
}

TEST(Permute, NegativeEntriesCountFromTheEnd) {
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(ops::permute(x, {-1, 0}).to_vector<float>(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
  EXPECT_EQ(ops::permute(x, {0, -1}).to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
}

TEST(Permute, EveryPermutationOfRankFourMatchesReference) {
  // Extents 1 and a tile-crossing 37 exercise the plan's unit-axis dropping and axis merging.
  Tensor x = Tensor::randn({3, 1, 37, 5}, 7, DType::kFloat32);
  std::vector<int> perm = {0, 1, 2, 3};
  int count = 0;
  do {
    Tensor y = ops::permute(x, perm);
    for (std::size_t k = 0; k < 4; ++k) EXPECT_EQ(y.shape()[k], x.shape()[static_cast<std::size_t>(perm[k])]);
    EXPECT_EQ(y.to_vector<float>(), reference_permute<float>(x, perm)) << "perm " << perm[0] << perm[1] << perm[2]
                                                                          << perm[3];
    ++count;
  } while (std::next_permutation(perm.begin(), perm.end()));
  EXPECT_EQ(count, 24);
}

TEST(Permute, LargeTiledTransposeMatchesReference) {
  // 131 x 257 is not a multiple of the tile and is above the parallel threshold.
  for (DType dtype : {DType::kFloat32, DType::kFloat64}) {
    Tensor x = Tensor::randn({131, 257}, 3, dtype);
    Tensor y = ops::transpose(x);
    if (dtype == DType::kFloat32) EXPECT_EQ(y.to_vector<float>(), reference_permute<float>(x, {1, 0}));
    else EXPECT_EQ(y.to_vector<double>(), reference_permute<double>(x, {1, 0}));
  }
  Tensor batched = Tensor::randn({3, 70, 45, 2}, 4);
  EXPECT_EQ(ops::permute(batched, {0, 2, 1, 3}).to_vector<float>(), reference_permute<float>(batched, {0, 2, 1, 3}));
  EXPECT_EQ(ops::permute(batched, {3, 1, 0, 2}).to_vector<float>(), reference_permute<float>(batched, {3, 1, 0, 2}));
}

TEST(Permute, Int64ValuesMoveAndNeverRecord) {
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor y = ops::permute(labels, {1, 0});
  EXPECT_EQ(y.dtype(), DType::kInt64);
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{1, 3, 5, 2, 4, 6}));
  EXPECT_FALSE(y.requires_grad());
}

TEST(Permute, ScalarAndEmptyTensors) {
  Tensor s = Tensor::scalar(2.5);
  EXPECT_EQ(ops::permute(s, {}).item(), 2.5);
  Tensor e = Tensor::zeros({0, 3});
  EXPECT_EQ(ops::permute(e, {1, 0}).shape(), (Shape{3, 0}));
}

TEST(Permute, InvalidPermutationThrowsValueErrorWithShape) {
  Tensor x = Tensor::zeros({2, 3});
  EXPECT_THROW((void)ops::permute(x, {0, 0}), ValueError);
  EXPECT_EQ(message_of([&] { (void)ops::permute(x, {0, 0}); }),
            "ops::permute: perm [0, 0] is not a permutation of the axes of shape [2, 3]");
  EXPECT_EQ(message_of([&] { (void)ops::permute(x, {0, 2}); }),
            "ops::permute: perm [0, 2] is not a permutation of the axes of shape [2, 3]");
  EXPECT_NO_THROW((void)ops::permute(x, {1, -2}));  // -2 is axis 0
  EXPECT_EQ(message_of([&] { (void)ops::permute(x, {0, 1, 2}); }),
            "ops::permute: perm [0, 1, 2] has 3 entries but the input of shape [2, 3] has rank 2");
  EXPECT_THROW((void)ops::permute(x, {-3, 0}), ValueError);
}

TEST(Permute, GradientIsInversePermutationOfUpstream) {
  Tensor x = Tensor::randn({2, 3, 4}, 5, DType::kFloat64).set_requires_grad(true);
  Tensor y = ops::permute(x, {1, 2, 0});
  Tensor u = Tensor::randn(y.shape(), 6, DType::kFloat64);
  y.backward(u);
  // dx[i][j][k] = u[j][k][i]
  const auto du = u.to_vector<double>();
  const auto dx = x.grad().to_vector<double>();
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 4; ++k)
        EXPECT_EQ(dx[static_cast<std::size_t>(i * 12 + j * 4 + k)], du[static_cast<std::size_t>(j * 8 + k * 2 + i)]);
}

TEST(Permute, GradCheckSeveralPermutations) {
  const Tensor x = Tensor::randn({2, 3, 4}, 11, DType::kFloat64);
  for (std::vector<int> perm : {std::vector<int>{0, 1, 2}, {2, 1, 0}, {1, 2, 0}, {0, 2, 1}, {-1, -3, -2}}) {
    EXPECT_TRUE(gradcheck([perm](const std::vector<Tensor>& in) { return ops::permute(in[0], perm); }, {x}));
  }
}

TEST(Permute, SymbolicUnknownBatchMovesWithItsAxis) {
  Tensor x = Tensor::symbolic({kUnknownDim, 3, 4});
  Tensor y = ops::permute(x, {2, 0, 1});
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(shape_to_string(y.shape()), "[4, None, 3]");
  EXPECT_THROW((void)ops::permute(x, {0, 1}), ValueError);
}

// -------------------------------------------------------------------------------- transpose

TEST(Transpose, DefaultSwapsTheLastTwoAxes) {
  Tensor x = counting({2, 2, 3});
  Tensor y = ops::transpose(x);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{0, 3, 1, 4, 2, 5, 6, 9, 7, 10, 8, 11}));
  EXPECT_EQ(ops::transpose(x, 0, 2).shape(), (Shape{3, 2, 2}));
  EXPECT_EQ(ops::transpose(x, 1, 1).to_vector<double>(), x.to_vector<double>());
}

TEST(Transpose, RankOneHasNoSecondToLastAxis) {
  Tensor x = Tensor::zeros({3});
  EXPECT_THROW((void)ops::transpose(x), ValueError);
  EXPECT_EQ(message_of([&] { (void)ops::transpose(x); }), "ops::transpose: axis -2 out of range for shape [3]");
}

TEST(Transpose, GradCheck) {
  const Tensor x = Tensor::randn({3, 2, 5}, 12, DType::kFloat64);
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::transpose(in[0]); }, {x}));
  EXPECT_TRUE(gradcheck([](const std::vector<Tensor>& in) { return ops::transpose(in[0], 0, 2); }, {x}));
}

TEST(Transpose, SymbolicUnknownBatch) {
  Tensor y = ops::transpose(Tensor::symbolic({kUnknownDim, 5, 7}));
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(shape_to_string(y.shape()), "[None, 7, 5]");
}

// ----------------------------------------------------------------------------------- concat

TEST(Concat, JoinsAlongEachAxis) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector(std::vector<float>{5, 6}, {1, 2});
  Tensor c = Tensor::from_vector(std::vector<float>{7, 8, 9, 10, 11, 12}, {2, 3});
  Tensor rows = ops::concat({a, b}, 0);
  EXPECT_EQ(rows.shape(), (Shape{3, 2}));
  EXPECT_EQ(rows.to_vector<float>(), (std::vector<float>{1, 2, 3, 4, 5, 6}));
  Tensor cols = ops::concat({a, c});  // default axis -1
  EXPECT_EQ(cols.shape(), (Shape{2, 5}));
  EXPECT_EQ(cols.to_vector<float>(), (std::vector<float>{1, 2, 7, 8, 9, 3, 4, 10, 11, 12}));
  EXPECT_EQ(ops::concat({c, a}, -1).to_vector<float>(), (std::vector<float>{7, 8, 9, 1, 2, 10, 11, 12, 3, 4}));
}

TEST(Concat, MiddleAxisOfThreeInputs) {
  Tensor a = Tensor::full({2, 1, 2}, 1.0);
  Tensor b = Tensor::full({2, 2, 2}, 2.0);
  Tensor c = Tensor::full({2, 0, 2}, 9.0);  // an empty piece contributes nothing
  Tensor y = ops::concat({a, c, b}, 1);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 1, 2, 2, 2, 2, 1, 1, 2, 2, 2, 2}));
}

TEST(Concat, Int64LabelsConcatenate) {
  Tensor a = Tensor::from_vector(std::vector<int64_t>{3, 1}, {2});
  Tensor b = Tensor::from_vector(std::vector<int64_t>{4, 1, 5}, {3});
  Tensor y = ops::concat({a, b}, 0);
  EXPECT_EQ(y.dtype(), DType::kInt64);
  EXPECT_EQ(y.to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 4, 1, 5}));
}

TEST(Concat, SingleInputIsACopy) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2}, {2});
  Tensor y = ops::concat({a});
  a.data<float>()[0] = 7;
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2}));
}

TEST(Concat, GradCheckEachAxis) {
  for (int axis : {0, 1, 2, -1}) {
    Shape sa = {2, 3, 2}, sb = {2, 3, 2}, sc = {2, 3, 2};
    const auto k = static_cast<std::size_t>(axis < 0 ? axis + 3 : axis);
    sb[k] = 1;
    sc[k] = 3;
    const std::vector<Tensor> inputs = {Tensor::randn(sa, 21, DType::kFloat64), Tensor::randn(sb, 22, DType::kFloat64),
                                        Tensor::randn(sc, 23, DType::kFloat64)};
    EXPECT_TRUE(gradcheck([axis](const std::vector<Tensor>& in) { return ops::concat(in, axis); }, inputs))
        << "axis " << axis;
  }
}

TEST(Concat, GradientGoesOnlyToInputsThatRequireIt) {
  Tensor a = Tensor::randn({2, 2}, 1, DType::kFloat64).set_requires_grad(true);
  Tensor b = Tensor::randn({2, 3}, 2, DType::kFloat64);  // a constant
  Tensor y = ops::concat({b, a}, 1);
  ASSERT_TRUE(y.requires_grad());
  Tensor u = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {2, 5});
  y.backward(u);
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{4, 5, 9, 10}));
  EXPECT_FALSE(b.grad().defined());
}

TEST(Concat, MismatchedExtentNamesTheTensorAndBothShapes) {
  Tensor a = Tensor::zeros({2, 3});
  Tensor b = Tensor::zeros({2, 3});
  Tensor c = Tensor::zeros({4, 3});
  EXPECT_THROW((void)ops::concat({a, b, c}, 1), ShapeError);
  EXPECT_EQ(message_of([&] { (void)ops::concat({a, b, c}, 1); }),
            "ops::concat: tensor 2 has shape [4, 3] but tensor 0 has shape [2, 3]; all extents except axis 1 "
            "must match");
  EXPECT_NO_THROW((void)ops::concat({a, b, c}, 0));
}

TEST(Concat, MismatchedRankAndDtypeAndEmptyList) {
  Tensor a = Tensor::zeros({2, 3});
  EXPECT_EQ(message_of([&] { (void)ops::concat({a, Tensor::zeros({2, 3, 1})}, 0); }),
            "ops::concat: tensor 1 has shape [2, 3, 1] (rank 3) but tensor 0 has shape [2, 3] (rank 2)");
  EXPECT_THROW((void)ops::concat({a, Tensor::zeros({2, 3, 1})}, 0), ShapeError);
  EXPECT_THROW((void)ops::concat({a, Tensor::zeros({2, 3}, DType::kFloat64)}, 0), ValueError);
  EXPECT_EQ(message_of([&] { (void)ops::concat({a, Tensor::zeros({2, 3}, DType::kInt64)}, 0); }),
            "ops::concat: tensor 1 is int64 of shape [2, 3] but tensor 0 is float32 of shape [2, 3]");
  EXPECT_THROW((void)ops::concat({}, 0), ValueError);
  EXPECT_EQ(message_of([&] { (void)ops::concat({a, a}, 2); }), "ops::concat: axis 2 out of range for shape [2, 3]");
}

TEST(Concat, SymbolicUnknownBatch) {
  Tensor a = Tensor::symbolic({kUnknownDim, 3});
  Tensor b = Tensor::symbolic({kUnknownDim, 5});
  Tensor y = ops::concat({a, b}, -1);
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(shape_to_string(y.shape()), "[None, 8]");
  EXPECT_EQ(shape_to_string(ops::concat({a, a}, 0).shape()), "[None, 3]");
  // A real tensor joined with a symbolic one gives a symbolic result.
  Tensor mixed = ops::concat({Tensor::zeros({4, 2}), a}, 1);
  EXPECT_TRUE(mixed.is_symbolic());
  EXPECT_EQ(mixed.shape(), (Shape{4, 5}));
  EXPECT_THROW((void)ops::concat({a, Tensor::symbolic({kUnknownDim, 3, 1})}, 1), ShapeError);
  EXPECT_THROW((void)ops::concat({a, b}, 0), ShapeError);
}

// ------------------------------------------------------------------------------------ slice

TEST(Slice, SelectsRangeAlongAxis) {
  Tensor x = counting({3, 4});
  EXPECT_EQ(ops::slice(x, 0, 1, 3).to_vector<double>(), (std::vector<double>{4, 5, 6, 7, 8, 9, 10, 11}));
  Tensor cols = ops::slice(x, 1, 1, 3);
  EXPECT_EQ(cols.shape(), (Shape{3, 2}));
  EXPECT_EQ(cols.to_vector<double>(), (std::vector<double>{1, 2, 5, 6, 9, 10}));
}

TEST(Slice, NegativeBoundsCountFromTheEndAndAreClamped) {
  Tensor x = Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 4}, {5});
  EXPECT_EQ(ops::slice(x, 0, -2, 5).to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_EQ(ops::slice(x, 0, 1, -1).to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(ops::slice(x, -1, -100, 2).to_vector<float>(), (std::vector<float>{0, 1}));
  EXPECT_EQ(ops::slice(x, 0, 3, 100).to_vector<float>(), (std::vector<float>{3, 4}));
  EXPECT_EQ(ops::slice(x, 0, 4, 2).shape(), (Shape{0}));  // stop before start: empty
  EXPECT_EQ(ops::slice(x, 0, 7, 9).shape(), (Shape{0}));
}

TEST(Slice, Int64Labels) {
  Tensor y = Tensor::from_vector(std::vector<int64_t>{9, 8, 7, 6}, {4});
  EXPECT_EQ(ops::slice(y, 0, 1, 3).to_vector<int64_t>(), (std::vector<int64_t>{8, 7}));
}

TEST(Slice, GradientIsUpstreamPlacedIntoZeros) {
  Tensor x = Tensor::randn({2, 4}, 3, DType::kFloat64).set_requires_grad(true);
  Tensor y = ops::slice(x, 1, 1, 3);
  y.backward(Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0, 1, 2, 0, 0, 3, 4, 0}));
}

TEST(Slice, GradCheckSeveralAxes) {
  const Tensor x = Tensor::randn({3, 4, 5}, 31, DType::kFloat64);
  struct Case { int axis; int64_t start, stop; };
  for (Case c : {Case{0, 1, 3}, Case{1, 0, 2}, Case{2, -3, -1}, Case{-1, 2, 100}, Case{1, 3, 1}}) {
    EXPECT_TRUE(gradcheck([c](const std::vector<Tensor>& in) { return ops::slice(in[0], c.axis, c.start, c.stop); },
                          {x}))
        << "axis " << c.axis << " [" << c.start << ", " << c.stop << ")";
  }
}

TEST(Slice, TwoSlicesOfOneTensorAccumulate) {
  // Overlapping slices: the shared column receives both upstream gradients.
  const Tensor x = Tensor::randn({2, 5}, 32, DType::kFloat64);
  EXPECT_TRUE(gradcheck(
      [](const std::vector<Tensor>& in) {
        return ops::concat({ops::slice(in[0], 1, 0, 3), ops::slice(in[0], 1, 2, 5)}, 1);
      },
      {x}));
}

TEST(Slice, SymbolicUnknownBatch) {
  Tensor x = Tensor::symbolic({kUnknownDim, 10});
  Tensor y = ops::slice(x, 1, 2, -2);
  EXPECT_TRUE(y.is_symbolic());
  EXPECT_EQ(shape_to_string(y.shape()), "[None, 6]");
  EXPECT_EQ(shape_to_string(ops::slice(x, 0, 0, 5).shape()), "[None, 10]");
}

TEST(Slice, AxisOutOfRangeNamesOpAndShape) {
  Tensor x = Tensor::zeros({2, 5});
  EXPECT_THROW((void)ops::slice(x, 2, 0, 1), ValueError);
  EXPECT_EQ(message_of([&] { (void)ops::slice(x, -3, 0, 1); }), "ops::slice: axis -3 out of range for shape [2, 5]");
}

// uint8 (image bytes) moves like any dtype: every byte lands where float64 would put its value.
TEST(MovementUint8, PermuteConcatSliceReshapeMoveBytes) {
  const Shape shape{2, 3, 4};
  const Tensor f = counting(shape);
  const Tensor b = ops::cast(f, DType::kUInt8);
  const auto same_values = [](const Tensor& bytes, const Tensor& doubles) {
    ASSERT_EQ(bytes.dtype(), DType::kUInt8);
    ASSERT_EQ(bytes.shape(), doubles.shape());
    EXPECT_EQ(ops::cast(bytes, DType::kFloat64).to_vector<double>(), doubles.to_vector<double>());
  };
  same_values(ops::permute(b, {2, 0, 1}), ops::permute(f, {2, 0, 1}));
  same_values(ops::transpose(b, 0, 2), ops::transpose(f, 0, 2));
  same_values(ops::concat({b, b}, 1), ops::concat({f, f}, 1));
  same_values(ops::slice(b, 2, 1, 3), ops::slice(f, 2, 1, 3));
  same_values(ops::slice(b, 0, 1, 2), ops::slice(f, 0, 1, 2));
  same_values(ops::reshape(b, {6, 4}), ops::reshape(f, {6, 4}));
  same_values(ops::flatten(b), ops::flatten(f));
  // Symbolic uint8 inputs keep their dtype.
  const Tensor s = Tensor::symbolic({kUnknownDim, 3, 4}, DType::kUInt8);
  EXPECT_EQ(ops::slice(s, 1, 0, 2).dtype(), DType::kUInt8);
  EXPECT_EQ(ops::concat({s, s}, -1).shape(), (Shape{kUnknownDim, 3, 8}));
  // Mixing uint8 with another dtype is still the usual dtype error.
  EXPECT_THROW((void)ops::concat({b, f}, 0), ValueError);
}

TEST(MovementUint8, PermuteKernelMatchesItsReference) {
  std::vector<uint8_t> x(3 * 5 * 7);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint8_t>(i * 37 + 11);
  const int64_t x_shape[3] = {3, 5, 7};
  const int perm[3] = {2, 0, 1};
  int64_t plan_shape[3], plan_strides[3];
  const int rank = kernels::cpu::permute_plan(3, x_shape, perm, plan_shape, plan_strides);
  std::vector<uint8_t> fast(x.size()), reference(x.size());
  kernels::cpu::permute_forward(x.data(), fast.data(), rank, plan_shape, plan_strides);
  kernels::cpu::permute_reference(x.data(), reference.data(), 3, x_shape, perm);
  EXPECT_EQ(fast, reference);
}

}  // namespace
}  // namespace normnet
