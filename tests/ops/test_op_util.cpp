// The shared op plumbing of src/ops/op_util.h: broadcasting shapes (with unknown extents),
// un-broadcasting gradients with sum_to, contiguous strides, and when ops record on the tape.
#include <gtest/gtest.h>

#include <vector>

#include "normnet/autograd.h"
#include "normnet/tensor.h"
#include "ops/op_util.h"
#include "support/expect_throw.h"

namespace normnet::ops::detail {
namespace {

using normnet::testing::expect_throw_with;

TEST(OpUtil, BroadcastShapesAlignsOnTheRight) {
  EXPECT_EQ(broadcast_shapes({2, 3}, {3}, "t"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({4, 1, 5}, {3, 1}, "t"), (Shape{4, 3, 5}));
  EXPECT_EQ(broadcast_shapes({}, {2, 2}, "t"), (Shape{2, 2}));
  // Unknown extents: with 1 or unknown stays unknown, with n becomes n.
  EXPECT_EQ(broadcast_shapes({-1, 3}, {1, 3}, "t"), (Shape{-1, 3}));
  EXPECT_EQ(broadcast_shapes({-1, 3}, {7, 3}, "t"), (Shape{7, 3}));
  expect_throw_with<ShapeError>([] { (void)broadcast_shapes({2, 3}, {4}, "ops::add"); },
                                {"ops::add", "[2, 3]", "[4]", "3 vs 4"});
}

TEST(OpUtil, SumToSumsTheBroadcastAxes) {
  const Tensor g = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum_to(g, {3}).to_vector<double>(), (std::vector<double>{5, 7, 9}));
  EXPECT_EQ(sum_to(g, {2, 1}).to_vector<double>(), (std::vector<double>{6, 15}));
  EXPECT_EQ(sum_to(g, {}).to_vector<double>(), (std::vector<double>{21}));
  EXPECT_EQ(sum_to(g, {2, 3}).to_vector<double>(), g.to_vector<double>());
}

TEST(OpUtil, ContiguousStridesAreRowMajor) {
  EXPECT_EQ(contiguous_strides({2, 3, 4}), (std::vector<int64_t>{12, 4, 1}));
  EXPECT_EQ(contiguous_strides({}), (std::vector<int64_t>{}));
}

TEST(OpUtil, RecordsOnlyWithGradModeAndAGradInput) {
  const Tensor plain = Tensor::ones({2});
  Tensor tracked = Tensor::ones({2});
  tracked.set_requires_grad(true);
  EXPECT_FALSE(should_record({plain}));
  EXPECT_TRUE(should_record({plain, tracked}));
  NoGradGuard guard;
  EXPECT_FALSE(should_record({tracked}));
}

}  // namespace
}  // namespace normnet::ops::detail
