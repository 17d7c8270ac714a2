// The Tensor handle: factories, accessors, copies, printing, the caching allocator and the
// thread-count setting.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/reduce.h"
#include "normnet/tensor.h"
#include "normnet/threading.h"

namespace normnet {
namespace {

template <class Fn>
std::string message_of(Fn&& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "<no exception>";
}

// ---------------------------------------------------------------------------------- factories

TEST(TensorFactory, ZerosOnesFullHaveTheirValueShapeAndDtype) {
  Tensor z = Tensor::zeros({2, 3});
  EXPECT_EQ(z.shape(), (Shape{2, 3}));
  EXPECT_EQ(z.dtype(), DType::kFloat32);
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(6, 0.0f));
  EXPECT_EQ(Tensor::ones({4}, DType::kFloat64).to_vector<double>(), std::vector<double>(4, 1.0));
  Tensor f = Tensor::full({2, 2}, -2.5, DType::kFloat64);
  EXPECT_EQ(f.to_vector<double>(), std::vector<double>(4, -2.5));
  Tensor i = Tensor::full({3}, 7.0, DType::kInt64);
  EXPECT_EQ(i.dtype(), DType::kInt64);
  EXPECT_EQ(i.to_vector<int64_t>(), (std::vector<int64_t>{7, 7, 7}));
}

TEST(TensorFactory, ScalarHasEmptyShapeAndOneElement) {
  Tensor s = Tensor::scalar(3.25);
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_EQ(s.item(), 3.25);
}

TEST(TensorFactory, ZeroExtentTensorHasNoElements) {
  Tensor e = Tensor::zeros({0, 3});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_TRUE(e.to_vector<float>().empty());
  EXPECT_FALSE(e.is_symbolic());
}

TEST(TensorFactory, NegativeExtentIsAShapeError) {
  EXPECT_THROW((void)Tensor::zeros({2, -1}), ShapeError);
  EXPECT_EQ(message_of([] { (void)Tensor::zeros({-3}); }), "Tensor: invalid shape [-3] (extents must be >= 0)");
}

TEST(TensorFactory, RandnIsDeterministicPerSeed) {
  const auto a = Tensor::randn({1000}, 42).to_vector<float>();
  const auto b = Tensor::randn({1000}, 42).to_vector<float>();
  const auto c = Tensor::randn({1000}, 43).to_vector<float>();
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // The float64 stream is the float32 one before rounding.
  const auto d = Tensor::randn({1000}, 42, DType::kFloat64).to_vector<double>();
  for (std::size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i], static_cast<float>(d[i]));
}

TEST(TensorFactory, RandomSamplesRefuseIntegerDtypes) {
  for (const DType dtype : {DType::kUInt8, DType::kInt64}) {
    const std::string name = dtype_name(dtype);
    EXPECT_EQ(message_of([&] { (void)Tensor::randn({4}, 1, dtype); }),
              "Tensor::randn: dtype must be float32 or float64, got " + name + " (draw float32 and ops::cast it)");
    EXPECT_EQ(message_of([&] { (void)Tensor::uniform({4}, 0.0, 256.0, 1, dtype); }),
              "Tensor::uniform: dtype must be float32 or float64, got " + name + " (draw float32 and ops::cast it)");
    EXPECT_THROW((void)Tensor::randn({4}, 1, dtype), ValueError);
  }
}

TEST(TensorFactory, RandnHasMeanZeroAndStdOneOver100kSamples) {
  const auto v = Tensor::randn({100000}, 7, DType::kFloat64).to_vector<double>();
  double sum = 0.0, sum_sq = 0.0;
  for (double x : v) sum += x;
  const double mean = sum / static_cast<double>(v.size());
  for (double x : v) sum_sq += (x - mean) * (x - mean);
  const double stddev = std::sqrt(sum_sq / static_cast<double>(v.size()));
  // Standard errors: 1/sqrt(1e5) ≈ 0.0032 for the mean, ≈ 0.0022 for the std; allow ~5 of them.
  EXPECT_NEAR(mean, 0.0, 0.016);
  EXPECT_NEAR(stddev, 1.0, 0.012);
  int beyond_three = 0;
  for (double x : v) beyond_three += std::abs(x) > 3.0;
  EXPECT_NEAR(beyond_three / 1e5, 0.0027, 0.001);  // the normal tail, not a uniform's
}

TEST(TensorFactory, UniformStaysInItsHalfOpenRange) {
  const auto v = Tensor::uniform({100000}, -2.0, 3.0, 9, DType::kFloat64).to_vector<double>();
  double lo = v[0], hi = v[0], sum = 0.0;
  for (double x : v) {
    lo = std::min(lo, x);
    hi = std::max(hi, x);
    sum += x;
  }
  EXPECT_GE(lo, -2.0);
  EXPECT_LT(hi, 3.0);
  EXPECT_LT(lo, -1.99);  // covers the range
  EXPECT_GT(hi, 2.99);
  EXPECT_NEAR(sum / 1e5, 0.5, 0.03);
  EXPECT_EQ(Tensor::uniform({5}, 0, 1, 3).to_vector<float>(), Tensor::uniform({5}, 0, 1, 3).to_vector<float>());
  EXPECT_THROW((void)Tensor::uniform({2}, 1.0, 0.0, 1), ValueError);
  EXPECT_EQ(message_of([] { (void)Tensor::uniform({2}, 1.0, 0.0, 1); }),
            "Tensor::uniform: expected lo <= hi, got 1 and 0");
}

TEST(TensorFactory, FromVectorPicksDtypeFromElementType) {
  EXPECT_EQ(Tensor::from_vector(std::vector<float>{1, 2}, {2}).dtype(), DType::kFloat32);
  EXPECT_EQ(Tensor::from_vector(std::vector<double>{1, 2}, {2}).dtype(), DType::kFloat64);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{3, 1, 4, 1, 5, 9}, {2, 3});
  EXPECT_EQ(labels.dtype(), DType::kInt64);
  EXPECT_EQ(labels.to_vector<int64_t>(), (std::vector<int64_t>{3, 1, 4, 1, 5, 9}));
}

TEST(TensorFactory, FromVectorShapeMismatchNamesCountAndShape) {
  EXPECT_THROW((void)Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5}, {2, 3}), ShapeError);
  EXPECT_EQ(message_of([] { (void)Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5}, {2, 3}); }),
            "Tensor::from_vector: 5 values do not fill shape [2, 3] (6 elements)");
}

TEST(TensorFactory, ArangeCountsUpAndDown) {
  EXPECT_EQ(Tensor::arange(5).to_vector<float>(), (std::vector<float>{0, 1, 2, 3, 4}));
  EXPECT_EQ(Tensor::arange(1.0, 2.0, 0.25, DType::kFloat64).to_vector<double>(),
            (std::vector<double>{1.0, 1.25, 1.5, 1.75}));
  EXPECT_EQ(Tensor::arange(3.0, 0.0, -1.0, DType::kInt64).to_vector<int64_t>(), (std::vector<int64_t>{3, 2, 1}));
  EXPECT_EQ(Tensor::arange(0).numel(), 0);
  EXPECT_EQ(Tensor::arange(2.0, 1.0, 1.0).numel(), 0);
  EXPECT_THROW((void)Tensor::arange(0.0, 1.0, 0.0), ValueError);
}

TEST(TensorFactory, SymbolicHasAShapeButNoValues) {
  Tensor s = Tensor::symbolic({kUnknownDim, 28, 28, 1});
  EXPECT_TRUE(s.defined());
  EXPECT_TRUE(s.is_symbolic());
  EXPECT_EQ(s.dim(), 4);
  EXPECT_EQ(s.numel(), -1);
  EXPECT_EQ(s.size(0), kUnknownDim);
  EXPECT_EQ(shape_to_string(s.shape()), "[None, 28, 28, 1]");
  EXPECT_THROW((void)s.data<float>(), Error);
  EXPECT_EQ(message_of([&] { (void)s.data<float>(); }),
            "Tensor::data: the tensor of shape [None, 28, 28, 1] is symbolic (it has a shape but no values)");
  EXPECT_TRUE(Tensor::symbolic({3}, DType::kInt64).is_symbolic());
  EXPECT_EQ(Tensor::symbolic({3}, DType::kInt64).dtype(), DType::kInt64);
  EXPECT_THROW((void)Tensor::symbolic({-2, 3}), ShapeError);
  EXPECT_FALSE(Tensor::zeros({3}).is_symbolic());
}

// --------------------------------------------------------------------------------- accessors

TEST(TensorAccess, ShapeDimNumelAndSizeWithNegativeAxis) {
  Tensor t = Tensor::zeros({2, 3, 4});
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.size(-3), 2);
  EXPECT_THROW((void)t.size(3), ValueError);
  EXPECT_EQ(message_of([&] { (void)t.size(-4); }), "Tensor::size: axis -4 out of range for shape [2, 3, 4]");
}

TEST(TensorAccess, DataOfTheWrongDtypeNamesBothDtypesAndShape) {
  Tensor t = Tensor::zeros({2, 3});
  EXPECT_THROW((void)t.data<double>(), Error);
  EXPECT_EQ(message_of([&] { (void)t.data<double>(); }),
            "Tensor::data: requested float64 from a float32 tensor of shape [2, 3]");
  EXPECT_EQ(message_of([&] { (void)Tensor::zeros({1}, DType::kInt64).data<float>(); }),
            "Tensor::data: requested float32 from a int64 tensor of shape [1]");
}

TEST(TensorAccess, DataWritesAreVisibleThroughEveryHandle) {
  Tensor a = Tensor::zeros({3});
  Tensor b = a;  // handles share storage
  a.data<float>()[1] = 5.0f;
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{0, 5, 0}));
  EXPECT_TRUE(a.same(b));
}

TEST(TensorAccess, ItemNeedsExactlyOneElement) {
  EXPECT_EQ(Tensor::full({1, 1}, 4.0).item(), 4.0);
  EXPECT_EQ(Tensor::full({1}, 9.0, DType::kInt64).item(), 9.0);
  EXPECT_THROW((void)Tensor::zeros({2}).item(), ValueError);
  EXPECT_EQ(message_of([] { (void)Tensor::zeros({2}).item(); }),
            "Tensor::item: expected a tensor with one element, got shape [2]");
}

TEST(TensorAccess, ToVectorConvertsBetweenDtypes) {
  Tensor f = Tensor::from_vector(std::vector<float>{1.5f, -2.0f}, {2});
  EXPECT_EQ(f.to_vector<double>(), (std::vector<double>{1.5, -2.0}));
  Tensor i = Tensor::from_vector(std::vector<int64_t>{7, -3}, {2});
  EXPECT_EQ(i.to_vector<float>(), (std::vector<float>{7.0f, -3.0f}));
}

TEST(TensorAccess, UndefinedTensorThrowsOnUse) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_FALSE(t.is_symbolic());
  EXPECT_FALSE(t.requires_grad());
  EXPECT_THROW((void)t.shape(), Error);
  EXPECT_EQ(message_of([&] { (void)t.shape(); }), "Tensor::shape: the tensor is undefined");
}

// ---------------------------------------------------------------------------- copies, printing

TEST(TensorCopy, CloneIsIndependent) {
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3}, {3});
  Tensor b = a.clone();
  b.data<float>()[0] = 100.0f;
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, 2, 3}));
  EXPECT_EQ(b.to_vector<float>(), (std::vector<float>{100, 2, 3}));
  EXPECT_FALSE(a.same(b));
  EXPECT_NE(a.data<float>(), b.data<float>());
  Tensor s = Tensor::symbolic({kUnknownDim, 2}).clone();
  EXPECT_TRUE(s.is_symbolic());
  EXPECT_EQ(s.shape(), (Shape{kUnknownDim, 2}));
}

TEST(TensorCopy, DetachSharesDataButNotGradOrGraph) {
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).set_requires_grad(true);
  Tensor d = x.detach();
  EXPECT_EQ(d.data<double>(), x.data<double>());  // same storage
  EXPECT_FALSE(d.requires_grad());
  EXPECT_FALSE(d.same(x));
  d.data<double>()[2] = 30.0;
  EXPECT_EQ(x.to_vector<double>()[2], 30.0);
  ops::sum(ops::mul(x, x)).backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4, 60}));
  EXPECT_FALSE(d.grad().defined());
}

TEST(TensorPrint, ShowsDtypeShapeAndNestedValues) {
  // Bracket nesting follows the axes: each row of a [2, 2] tensor is one bracket pair.
  EXPECT_EQ(Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2}).to_string(),
            "Tensor(float32, [2, 2]) [[1, 2], [3, 4]]");
  EXPECT_EQ(Tensor::from_vector(std::vector<int64_t>{1, 2, 3}, {3}).to_string(), "Tensor(int64, [3]) [1, 2, 3]");
  EXPECT_EQ(Tensor::scalar(2.5, DType::kFloat64).to_string(), "Tensor(float64, []) 2.5");
  EXPECT_EQ(Tensor::symbolic({kUnknownDim, 3}).to_string(), "Tensor(float32, [None, 3], symbolic)");
  EXPECT_EQ(Tensor().to_string(), "Tensor(undefined)");
  std::ostringstream out;
  out << Tensor::ones({2});
  EXPECT_EQ(out.str(), "Tensor(float32, [2]) [1, 1]");
}

TEST(TensorPrint, LongTensorsAreElided) {
  const std::string s = Tensor::zeros({1000}).to_string();
  EXPECT_LT(s.size(), 400u);
  EXPECT_NE(s.find("..."), std::string::npos);
  EXPECT_EQ(s.rfind("Tensor(float32, [1000])", 0), 0u);
}

// --------------------------------------------------------------------------------- allocator

TEST(Allocator, ReallocatingTheSameSizeHitsTheCache) {
  { Tensor warm = Tensor::zeros({12345}); }  // puts one block of this size class in the cache
  const detail::AllocatorStats before = detail::allocator_stats();
  for (int i = 0; i < 10; ++i) {
    Tensor t = Tensor::zeros({12345});
    t.data<float>()[0] = static_cast<float>(i);
  }
  const detail::AllocatorStats after = detail::allocator_stats();
  EXPECT_GE(after.hits - before.hits, 10u);
  EXPECT_EQ(after.misses, before.misses);
}

TEST(Allocator, BlocksAre64ByteAligned) {
  for (int64_t n : {1, 3, 17, 64, 1000, 12347, 1 << 20}) {
    Tensor f = Tensor::zeros({n});
    Tensor d = Tensor::zeros({n}, DType::kFloat64);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(f.data<float>()) % 64, 0u) << n;
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(d.data<double>()) % 64, 0u) << n;
    void* raw = detail::allocate(static_cast<std::size_t>(n) * 3);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(raw) % 64, 0u) << n;
    detail::deallocate(raw, static_cast<std::size_t>(n) * 3);
  }
}

TEST(Allocator, EmptyingTheCacheReleasesEverything) {
  { Tensor t = Tensor::zeros({4096}); }
  EXPECT_GT(detail::allocator_stats().cached_bytes, 0u);
  detail::empty_allocator_cache();
  EXPECT_EQ(detail::allocator_stats().cached_bytes, 0u);
  const uint64_t misses = detail::allocator_stats().misses;
  { Tensor t = Tensor::zeros({4096}); }
  EXPECT_EQ(detail::allocator_stats().misses, misses + 1);
}

// --------------------------------------------------------------------------------- threading

TEST(Threading, SetAndGetNumThreads) {
  const int original = get_num_threads();
  EXPECT_GE(original, 1);
  set_num_threads(3);
  EXPECT_EQ(get_num_threads(), 3);
  set_num_threads(1);
  EXPECT_EQ(get_num_threads(), 1);
  set_num_threads(original);
  EXPECT_EQ(get_num_threads(), original);
}

TEST(Threading, FewerThanOneThreadIsAValueError) {
  const int original = get_num_threads();
  EXPECT_THROW(set_num_threads(0), ValueError);
  EXPECT_EQ(message_of([] { set_num_threads(-2); }), "set_num_threads: expected n >= 1, got -2");
  EXPECT_EQ(get_num_threads(), original);  // unchanged by the failed call
}

// ---- uint8: the storage dtype of image bytes ----

TEST(TensorUint8, IsAOneByteStorageDtype) {
  EXPECT_STREQ(dtype_name(DType::kUInt8), "uint8");
  EXPECT_EQ(dtype_size(DType::kUInt8), 1u);
  EXPECT_FALSE(is_floating(DType::kUInt8));
  EXPECT_FALSE(is_floating(DType::kInt64));
  EXPECT_TRUE(is_floating(DType::kFloat32));
  EXPECT_TRUE(is_floating(DType::kFloat64));
}

TEST(TensorUint8, FactoriesDataCloneAndPrinting) {
  Tensor t = Tensor::from_vector(std::vector<uint8_t>{0, 1, 254, 255}, {2, 2});
  EXPECT_EQ(t.dtype(), DType::kUInt8);
  EXPECT_EQ(t.data<uint8_t>()[3], 255);
  EXPECT_EQ(t.to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 254, 255}));
  Tensor c = t.clone();
  c.data<uint8_t>()[0] = 9;
  EXPECT_EQ(t.data<uint8_t>()[0], 0);  // a deep copy
  EXPECT_EQ(Tensor::zeros({3}, DType::kUInt8).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 0}));
  EXPECT_EQ(Tensor::ones({2}, DType::kUInt8).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 1}));
  EXPECT_EQ(Tensor::scalar(7, DType::kUInt8).item(), 7.0);
  // full() stores a double by the uint8 cast rule: truncate, saturate, NaN → 0.
  EXPECT_EQ(Tensor::full({1}, 300.0, DType::kUInt8).item(), 255.0);
  EXPECT_EQ(Tensor::full({1}, -4.0, DType::kUInt8).item(), 0.0);
  EXPECT_EQ(Tensor::full({1}, 12.9, DType::kUInt8).item(), 12.0);
  EXPECT_EQ(Tensor::full({1}, std::nan(""), DType::kUInt8).item(), 0.0);
  EXPECT_EQ(Tensor::arange(3, DType::kUInt8).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 2}));
  EXPECT_EQ(Tensor::symbolic({kUnknownDim, 4}, DType::kUInt8).dtype(), DType::kUInt8);
  EXPECT_EQ(t.to_string(), "Tensor(uint8, [2, 2]) [[0, 1], [254, 255]]");
  EXPECT_NE(message_of([&] { (void)t.data<float>(); }).find("requested float32 from a uint8 tensor"), std::string::npos);
}

TEST(TensorUint8, CannotRequireGrad) {
  Tensor t = Tensor::zeros({2}, DType::kUInt8);
  EXPECT_THROW(t.set_requires_grad(true), Error);
}

TEST(CastUint8, BytesConvertExactlyToEveryDtypeAndBack) {
  std::vector<uint8_t> all(256);
  for (int i = 0; i < 256; ++i) all[static_cast<std::size_t>(i)] = static_cast<uint8_t>(i);
  const Tensor bytes = Tensor::from_vector(all, {256});
  for (DType d : {DType::kFloat32, DType::kFloat64, DType::kInt64}) {
    const Tensor wide = ops::cast(bytes, d);
    EXPECT_EQ(wide.dtype(), d);
    const std::vector<double> v = wide.to_vector<double>();
    for (int i = 0; i < 256; ++i) ASSERT_EQ(v[static_cast<std::size_t>(i)], i) << dtype_name(d);
    EXPECT_EQ(ops::cast(wide, DType::kUInt8).to_vector<uint8_t>(), all) << dtype_name(d);
  }
  EXPECT_TRUE(ops::cast(bytes, DType::kUInt8).same(bytes));  // same dtype: x itself
  EXPECT_EQ(bytes.to(DType::kFloat32).dtype(), DType::kFloat32);
}

TEST(CastUint8, FloatsTruncateTowardZeroSaturateAndNanGivesZero) {
  const Tensor f = Tensor::from_vector(
      std::vector<float>{0.0f, 0.99f, 1.0f, 254.99f, 255.0f, 255.5f, 1e30f, -0.5f, -1.0f, -1e30f, INFINITY, -INFINITY,
                         NAN, -0.0f, 127.5f},
      {15});
  const std::vector<uint8_t> expected{0, 0, 1, 254, 255, 255, 255, 0, 0, 0, 255, 0, 0, 0, 127};
  EXPECT_EQ(ops::cast(f, DType::kUInt8).to_vector<uint8_t>(), expected);
  EXPECT_EQ(ops::cast(ops::cast(f, DType::kFloat64), DType::kUInt8).to_vector<uint8_t>(), expected);
  const Tensor i = Tensor::from_vector(std::vector<int64_t>{-300, -1, 0, 17, 255, 256, 1000, INT64_MAX, INT64_MIN}, {9});
  EXPECT_EQ(ops::cast(i, DType::kUInt8).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 0, 17, 255, 255, 255, 255, 0}));
}

TEST(CastUint8, SymbolicAndNotRecorded) {
  const Tensor s = ops::cast(Tensor::symbolic({kUnknownDim, 3}, DType::kFloat32), DType::kUInt8);
  EXPECT_TRUE(s.is_symbolic());
  EXPECT_EQ(s.dtype(), DType::kUInt8);
  Tensor x = Tensor::from_vector(std::vector<double>{1.5, 2.5}, {2}).set_requires_grad(true);
  EXPECT_FALSE(ops::cast(x, DType::kUInt8).requires_grad());
  EXPECT_FALSE(ops::cast(ops::cast(x, DType::kUInt8), DType::kFloat64).requires_grad());
}

TEST(TensorUint8, ArithmeticIsATypeErrorThatNamesTheOpAndSuggestsACast) {
  const Tensor b = Tensor::from_vector(std::vector<uint8_t>{1, 2}, {2});
  const Tensor f = Tensor::ones({2});
  const auto expect_type_error = [](const std::function<void()>& fn, const std::string& op) {
    try {
      fn();
      ADD_FAILURE() << op << ": expected a TypeError";
    } catch (const TypeError& e) {
      const std::string m = e.what();
      EXPECT_NE(m.find(op + ":"), std::string::npos) << m;
      EXPECT_NE(m.find("uint8"), std::string::npos) << m;
      EXPECT_NE(m.find("ops::cast(x, DType::kFloat32)"), std::string::npos) << m;
      EXPECT_NE(m.find("layers::Rescaling"), std::string::npos) << m;
    }
  };
  expect_type_error([&] { (void)(b + b); }, "ops::add");
  expect_type_error([&] { (void)(f * b); }, "ops::mul");
  expect_type_error([&] { (void)(b / 255.0); }, "ops::div");
  expect_type_error([&] { (void)(-b); }, "ops::neg");
  expect_type_error([&] { (void)ops::exp(b); }, "ops::exp");
  expect_type_error([&] { (void)ops::sum(b); }, "ops::sum");
  expect_type_error([&] { (void)ops::mean(b); }, "ops::mean");
  expect_type_error([&] { (void)ops::max(b); }, "ops::max");
  expect_type_error([&] { (void)ops::argmax(b, 0); }, "ops::argmax");
  expect_type_error([&] { (void)ops::broadcast_to(b, {3, 2}); }, "ops::broadcast_to");
  // Symbolic tensors too: a model that forgets the Rescaling fails when it is built.
  expect_type_error([&] { (void)ops::relu(Tensor::symbolic({kUnknownDim, 2}, DType::kUInt8)); }, "ops::relu");
  // A TypeError is a ValueError, so existing `catch (const ValueError&)` still sees it.
  EXPECT_THROW((void)(b + b), ValueError);
}

}  // namespace
}  // namespace normnet
