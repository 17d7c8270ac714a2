// The tape: accumulation, shared subexpressions, NoGradGuard, detach, backward's argument
// checks, zero_grad, deep graphs, and which tensors may require grad.
#include <gtest/gtest.h>
#include <pthread.h>

#include <cstdlib>
#include <functional>
#include <memory>
#include <string>

#include "normnet/autograd.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/reduce.h"
#include "normnet/tensor.h"

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

Tensor vec(std::vector<double> values) {
  const auto n = static_cast<int64_t>(values.size());
  return Tensor::from_vector(values, {n});
}

// Runs fn on a thread with a deliberately small stack (256 KiB), so that recursion whose depth
// grows with the graph fails here at a modest depth instead of only on huge graphs. Returns
// true when the thread finished.
bool run_on_small_stack(const std::function<void()>& fn) {
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t thread;
  auto* task = new std::function<void()>(fn);
  const int rc = pthread_create(
      &thread, &attr,
      [](void* arg) -> void* {
        std::unique_ptr<std::function<void()>> f(static_cast<std::function<void()>*>(arg));
        (*f)();
        return nullptr;
      },
      task);
  pthread_attr_destroy(&attr);
  if (rc != 0) {
    delete task;
    return false;
  }
  return pthread_join(thread, nullptr) == 0;
}

// x -> x·1 -> ... (depth multiplications) -> sum: dloss/dx = 1 everywhere.
void deep_chain(int depth, bool check_grad) {
  Tensor x = vec({1.0, 2.0}).set_requires_grad(true);
  {
    Tensor y = x;
    for (int i = 0; i < depth; ++i) y = ops::mul(y, 1.0);
    ops::sum(y).backward();
  }  // the whole graph is released here
  if (check_grad && x.grad().to_vector<double>() != std::vector<double>{1.0, 1.0}) std::abort();
}

TEST(Autograd, GradientsAccumulateAcrossTwoBackwardCalls) {
  Tensor x = vec({1, 2, 3}).set_requires_grad(true);
  ops::sum(ops::mul(x, x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4, 6}));
  ops::sum(ops::mul(x, 3.0)).backward();  // a second graph over the same leaf adds 3
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));
}

TEST(Autograd, DiamondGraphSumsEveryPath) {
  // a = 3x, b = x², c = a·b = 3x³  ⇒  dc/dx = 9x² (x reaches c along two paths).
  Tensor x = vec({1, -2, 0.5}).set_requires_grad(true);
  Tensor a = ops::mul(x, 3.0);
  Tensor b = ops::mul(x, x);
  ops::sum(ops::mul(a, b)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{9, 36, 2.25}));
}

TEST(Autograd, SharedIntermediateGetsBothUpstreams) {
  // h = x + 1 is used twice: loss = Σ h·h + Σ h  ⇒  dloss/dx = 2h + 1.
  Tensor x = vec({0, 1, 2}).set_requires_grad(true);
  Tensor h = ops::add(x, 1.0);
  ops::add(ops::sum(ops::mul(h, h)), ops::sum(h)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 5, 7}));
  EXPECT_FALSE(h.grad().defined()) << "intermediate results do not keep a gradient";
}

TEST(Autograd, NoGradGuardStopsRecordingAndRestores) {
  Tensor x = vec({1, 2}).set_requires_grad(true);
  ASSERT_TRUE(grad_enabled());
  {
    NoGradGuard guard;
    EXPECT_FALSE(grad_enabled());
    Tensor y = ops::mul(x, x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{1, 4}));  // values are still computed
    {
      NoGradGuard inner;
      EXPECT_FALSE(grad_enabled());
    }
    EXPECT_FALSE(grad_enabled()) << "an inner guard restores the outer state, not 'on'";
  }
  EXPECT_TRUE(grad_enabled());
  EXPECT_TRUE(ops::mul(x, x).requires_grad());
  set_grad_enabled(false);
  EXPECT_FALSE(ops::mul(x, x).requires_grad());
  set_grad_enabled(true);
}

TEST(Autograd, DetachCutsTheGraph) {
  // z = detach(x²)·x: the detached factor is a constant, so dz/dx = x², not 3x².
  Tensor x = vec({1, 2, 3}).set_requires_grad(true);
  Tensor y = ops::mul(x, x);
  ops::sum(ops::mul(y.detach(), x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, 4, 9}));
  EXPECT_FALSE(y.detach().requires_grad());
}

TEST(Autograd, BackwardOnNonScalarNeedsAGradient) {
  Tensor x = vec({1, 2, 3}).set_requires_grad(true);
  Tensor y = ops::mul(x, 2.0);
  EXPECT_THROW(y.backward(), ValueError);
  EXPECT_EQ(message_of([&] { y.backward(); }),
            "Tensor::backward: needs a one-element tensor (a loss), got shape [3]; pass an explicit gradient for "
            "other shapes");
  y.backward(vec({1, 10, 100}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 20, 200}));
}

TEST(Autograd, BackwardWithMismatchedGradientShapeThrows) {
  Tensor x = vec({1, 2, 3}).set_requires_grad(true);
  Tensor y = ops::mul(x, 2.0);
  EXPECT_THROW(y.backward(vec({1, 2})), ShapeError);
  EXPECT_EQ(message_of([&] { y.backward(vec({1, 2})); }),
            "Tensor::backward: gradient float64 [2] does not match tensor float64 [3]");
  EXPECT_THROW(y.backward(Tensor::ones({3})), ShapeError) << "float32 gradient for a float64 tensor";
  EXPECT_FALSE(x.grad().defined()) << "a rejected backward must not touch the leaves";
}

TEST(Autograd, BackwardOnATensorWithoutGraphThrows) {
  Tensor c = vec({1, 2});
  EXPECT_THROW(ops::sum(c).backward(), ValueError);
  EXPECT_THROW(Tensor::symbolic({kUnknownDim, 2}).backward(Tensor::ones({1, 2})), ValueError);
}

TEST(Autograd, ZeroGradClearsSoTheNextBackwardStartsFresh) {
  Tensor x = vec({1, 2}).set_requires_grad(true);
  ops::sum(ops::mul(x, x)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 4}));
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
  ops::sum(ops::mul(x, 5.0)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 5}));
}

TEST(Autograd, LeafThatIsTheRoot) {
  Tensor x = vec({4, 5}).set_requires_grad(true);
  x.backward(vec({1, -1}));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1, -1}));
  Tensor s = Tensor::scalar(2.0, DType::kFloat64).set_requires_grad(true);
  s.backward();
  EXPECT_EQ(s.grad().item(), 1.0);
  s.backward();
  EXPECT_EQ(s.grad().item(), 2.0);
}

TEST(Autograd, SeedGradientIsNotAliasedIntoTheLeaf) {
  // The leaf's gradient must be its own buffer: changing the seed afterwards changes nothing.
  Tensor x = vec({1, 2}).set_requires_grad(true);
  Tensor seed = vec({3, 4});
  x.backward(seed);
  seed.data<double>()[0] = 100;
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 4}));
}

TEST(Autograd, Int64TensorsCannotRequireGrad) {
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{1, 2, 3}, {3});
  EXPECT_THROW(labels.set_requires_grad(true), ValueError);
  EXPECT_EQ(message_of([&] { labels.set_requires_grad(true); }),
            "Tensor::set_requires_grad: only floating tensors can require grad, got int64 of shape [3]");
  EXPECT_FALSE(labels.requires_grad());
  EXPECT_NO_THROW(labels.set_requires_grad(false));
}

TEST(Autograd, RecordedResultCannotBeUnmarked) {
  Tensor x = vec({1}).set_requires_grad(true);
  Tensor y = ops::mul(x, x);
  EXPECT_TRUE(y.requires_grad());
  EXPECT_THROW(y.set_requires_grad(false), ValueError);
}

TEST(Autograd, GraphIsFreedWithItsLastHandle) {
  // Backward closures must not hold their own output (a reference cycle would leak the graph).
  Tensor x = vec({1, 2}).set_requires_grad(true);
  std::weak_ptr<detail::TensorImpl> weak_mid, weak_loss;
  {
    Tensor mid = ops::mul(x, x);
    Tensor loss = ops::sum(ops::mul(mid, 2.0));
    weak_mid = mid.impl();
    weak_loss = loss.impl();
    loss.backward();
  }
  EXPECT_TRUE(weak_mid.expired());
  EXPECT_TRUE(weak_loss.expired());
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{4, 8}));
}

TEST(Autograd, DeepChainBackwardAndDestructionOnTheMainStack) {
  Tensor x = vec({1.0, 2.0}).set_requires_grad(true);
  {
    Tensor y = x;
    for (int i = 0; i < 10000; ++i) y = ops::add(y, 0.0);
    ops::sum(y).backward();
  }
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{1.0, 1.0}));
}

TEST(AutogradDeathTest, DeepChainNeedsNoStackProportionalToDepth) {
  // 10000 ops on a 256 KiB stack: backward (an iterative topological sort) and releasing the
  // graph must both use bounded stack. In a child process, so that an overflow fails this test
  // instead of crashing the whole suite.
  // Releasing the graph is iterative (Node::~Node takes inputs it alone owns onto a worklist, as
  // PyTorch's deleteNode does); before that, a chain of ~300k ops overflowed the 8 MiB stack.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        const bool finished = run_on_small_stack([] { deep_chain(10000, /*check_grad=*/true); });
        std::exit(finished ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace normnet
