// Concatenate and Add: values, symbolic shapes, masks (Keras's rules), gradients, errors.
#include <gtest/gtest.h>

#include "normnet/layers.h"
#include "normnet/model.h"
#include "normnet/ops.h"
#include "support/gradcheck.h"
#include "support/layer_harness.h"

namespace normnet {
namespace {

using testing::gradcheck_layer;
using testing::max_abs_diff;

template <class Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

Tensor fv(std::vector<float> v, Shape s) { return Tensor::from_vector(v, std::move(s)); }

TEST(Concatenate, JoinsAlongTheAxis) {
  auto cat = layers::Concatenate();
  Tensor y = cat(std::vector<Tensor>{fv({1, 2, 3, 4}, {2, 2}), fv({5, 6, 7, 8, 9, 10}, {2, 3})})[0];
  EXPECT_EQ(y.shape(), (Shape{2, 5}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{1, 2, 5, 6, 7, 3, 4, 8, 9, 10}));
  auto time = layers::Concatenate(1);
  Tensor t = time(std::vector<Tensor>{Tensor::symbolic({kUnknownDim, 3, 4}), Tensor::symbolic({kUnknownDim, 5, 4})})[0];
  EXPECT_EQ(t.shape(), (Shape{kUnknownDim, 8, 4}));
  EXPECT_EQ(time.get_config()["axis"], 1);
  EXPECT_EQ(layers::Concatenate().get_config()["axis"], -1);
}

TEST(Concatenate, InAFunctionalModel) {
  Tensor a = Input({3}), b = Input({2});
  Tensor joined = layers::Concatenate()(std::vector<Tensor>{layers::Dense(4)(a), b})[0];
  EXPECT_EQ(joined.shape(), (Shape{kUnknownDim, 6}));
  Model model({a, b}, {joined});
  std::vector<Tensor> out = model(std::vector<Tensor>{Tensor::ones({5, 3}), Tensor::zeros({5, 2})});
  EXPECT_EQ(out[0].shape(), (Shape{5, 6}));
}

TEST(Concatenate, MismatchNamesLayerAndShapes) {
  auto cat = layers::Concatenate().name("join");
  const std::string msg = error_of([&] {
    (void)cat(std::vector<Tensor>{Tensor::symbolic({kUnknownDim, 3, 4}), Tensor::symbolic({kUnknownDim, 5, 5})});
  });
  EXPECT_NE(msg.find("Concatenate 'join'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[None, 3, 4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[None, 5, 5]"), std::string::npos) << msg;
  auto out_of_range = layers::Concatenate(3);
  EXPECT_THROW((void)out_of_range(std::vector<Tensor>{Tensor::zeros({2, 2}), Tensor::zeros({2, 2})}), ShapeError);
}

TEST(Concatenate, GradientMatchesFiniteDifferences) {
  auto cat = layers::Concatenate(1);
  EXPECT_TRUE(gradcheck_layer(*cat, {Tensor::randn({2, 3, 2}, 1, DType::kFloat64), Tensor::randn({2, 1, 2}, 2, DType::kFloat64)}, {}));
}

TEST(Concatenate, MasksFollowKerasRules) {
  const Tensor ma = fv({1, 0, 1, 1}, {2, 2});
  // Feature join: a's step mask AND all-ones for b.
  auto cat = layers::Concatenate();
  Tensor a = Tensor::randn({2, 2, 3}, 1), b = Tensor::randn({2, 2, 4}, 2);
  a.set_mask(ma);
  Tensor y = cat(std::vector<Tensor>{a, b})[0];
  ASSERT_TRUE(y.mask().defined());
  EXPECT_EQ(y.mask().to_vector<float>(), ma.to_vector<float>());
  // Time join: the step masks are joined.
  auto time = layers::Concatenate(1);
  Tensor c = Tensor::randn({2, 3, 3}, 3);
  c.set_mask(fv({0, 1, 1, 1, 1, 0}, {2, 3}));
  Tensor z = time(std::vector<Tensor>{a, c})[0];
  ASSERT_TRUE(z.mask().defined());
  EXPECT_EQ(z.mask().to_vector<float>(), (std::vector<float>{1, 0, 0, 1, 1, 1, 1, 1, 1, 0}));
  // No masks in, none out.
  EXPECT_FALSE(cat(std::vector<Tensor>{Tensor::randn({2, 2, 3}, 1), b})[0].mask().defined());
}

TEST(Add, SumsWithBroadcasting) {
  auto add = layers::Add();
  Tensor y = add(std::vector<Tensor>{fv({1, 2, 3, 4}, {2, 2}), fv({10, 20, 30, 40}, {2, 2}), fv({100, 200}, {1, 2})})[0];
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{111, 222, 133, 244}));
  EXPECT_EQ(add(std::vector<Tensor>{Tensor::symbolic({kUnknownDim, 4}), Tensor::symbolic({kUnknownDim, 4})})[0].shape(),
            (Shape{kUnknownDim, 4}));
}

TEST(Add, MismatchNamesLayerAndShapes) {
  auto add = layers::Add().name("residual");
  const std::string msg = error_of([&] { (void)add(std::vector<Tensor>{Tensor::zeros({2, 3}), Tensor::zeros({2, 4})}); });
  EXPECT_EQ(msg, "Add 'residual': inputs must have the same shape (or shapes that broadcast), got shapes [2, 3], [2, 4]");
  auto empty = layers::Add();
  EXPECT_THROW((void)empty(std::vector<Tensor>{}), Error);
}

TEST(Add, GradientAndMasks) {
  auto add = layers::Add();
  EXPECT_TRUE(gradcheck_layer(*add, {Tensor::randn({2, 3}, 1, DType::kFloat64), Tensor::randn({2, 3}, 2, DType::kFloat64)}, {}));
  Tensor a = Tensor::randn({2, 3, 2}, 3), b = Tensor::randn({2, 3, 2}, 4);
  a.set_mask(fv({1, 1, 0, 1, 0, 1}, {2, 3}));
  b.set_mask(fv({0, 1, 1, 1, 1, 1}, {2, 3}));
  auto masked = layers::Add();
  Tensor y = masked(std::vector<Tensor>{a, b})[0];
  ASSERT_TRUE(y.mask().defined());
  EXPECT_EQ(y.mask().to_vector<float>(), (std::vector<float>{0, 1, 0, 1, 0, 1}));
}

}  // namespace
}  // namespace normnet
