// reshape, flatten, squeeze, unsqueeze: shared storage, inference of -1, symbolic batches, errors.
#include <gtest/gtest.h>

#include "normnet/normnet.h"
#include "support/gradcheck.h"

namespace normnet {
namespace {

TEST(Reshape, SharesStorageAndInfersOneExtent) {
  Tensor x = Tensor::arange(12);
  Tensor y = ops::reshape(x, {3, -1});
  EXPECT_EQ(y.shape(), (Shape{3, 4}));
  x.data<float>()[5] = 42.0f;
  EXPECT_EQ(y.data<float>()[5], 42.0f);
  EXPECT_EQ(ops::flatten(ops::reshape(x, {2, 3, 2})).shape(), (Shape{2, 6}));
  EXPECT_EQ(ops::unsqueeze(x, 0).shape(), (Shape{1, 12}));
  EXPECT_EQ(ops::unsqueeze(x, -1).shape(), (Shape{12, 1}));
  EXPECT_EQ(ops::squeeze(ops::reshape(x, {1, 12}), 0).shape(), (Shape{12}));
}

TEST(Reshape, ErrorsNameShapes) {
  const Tensor x = Tensor::zeros({2, 6});
  try {
    (void)ops::reshape(x, {5, 3});
    FAIL();
  } catch (const ShapeError& e) {
    EXPECT_STREQ(e.what(), "ops::reshape: cannot reshape [2, 6] (12 elements) to [5, 3] (15 elements)");
  }
  EXPECT_THROW((void)ops::reshape(x, {-1, -1}), ValueError);
  EXPECT_THROW((void)ops::reshape(x, {5, -1}), ShapeError);
  EXPECT_THROW((void)ops::squeeze(x, 1), ShapeError);
}

TEST(Reshape, SymbolicBatchIsKept) {
  const Tensor x = Tensor::symbolic({kUnknownDim, 28, 28, 1});
  EXPECT_EQ(ops::reshape(x, {-1, 784}).shape(), (Shape{kUnknownDim, 784}));
  EXPECT_EQ(ops::flatten(x).shape(), (Shape{kUnknownDim, 784}));
  EXPECT_THROW((void)ops::reshape(x, {28, 28}), ShapeError);
  EXPECT_THROW((void)ops::reshape(x, {-1, 100}), ShapeError);
}

TEST(ReshapeGrad, ReshapeFlattenSqueeze) {
  const Tensor x = Tensor::randn({2, 3, 4}, 1, DType::kFloat64);
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& v) { return ops::reshape(v[0], {4, -1}) * ops::reshape(v[0], {4, 6}); }, {x}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& v) { return ops::flatten(v[0]); }, {x}));
  EXPECT_TRUE(testing::gradcheck([](const std::vector<Tensor>& v) { return ops::squeeze(ops::unsqueeze(v[0], 1), 1); }, {x}));
}

}  // namespace
}  // namespace normnet
