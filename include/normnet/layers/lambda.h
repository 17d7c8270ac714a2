// Lambda: a layer from any function of tensors built from ops. Its output shape comes from
// running the function on symbolic tensors, its gradient from autograd.
//
//   auto l2 = layers::Lambda([](const Tensor& x) { return ops::l2_normalize(x); }).name("l2");
//   auto both = layers::Lambda([](const std::vector<Tensor>& xs) { return std::vector<Tensor>{xs[0] * xs[1]}; });
//
// Masks: a Lambda given `.mask_fn(...)` computes its output mask with it (masks then flow on);
// one without drops an incoming mask and says so once on stderr, naming the layer (Keras drops
// it silently: tensorflow#28143).
//
// Saving: a function cannot be written to a file, so a Lambda is serializable only when its
// function was registered under a name:
//   layers::register_lambda("l2_normalize", [](const Tensor& x) { return ops::l2_normalize(x); });
//   auto l = layers::Lambda::from_registry("l2_normalize");   // get_config: {"function": "l2_normalize"}
// A Lambda made from a bare callable has registered() == false, and saving a model holding it
// fails with an error naming the layer.
#pragma once

#include <functional>
#include <string>
#include <type_traits>
#include <vector>

#include "normnet/layer.h"

namespace normnet::layers {

// A Lambda's function in its general form (several inputs and outputs), with an optional mask
// function; the one-tensor forms are wrapped into it.
struct LambdaFunction {
  using Fn = std::function<std::vector<Tensor>(const std::vector<Tensor>&)>;
  using MaskFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks)>;
  Fn fn;
  MaskFn mask_fn;            // empty: incoming masks are dropped (with a warning)
  bool single_input = true;  // made from a Tensor(const Tensor&) callable
};

namespace detail {
// Wraps Tensor(const Tensor&) or std::vector<Tensor>(const std::vector<Tensor>&) callables.
template <class F>
LambdaFunction::Fn wrap_lambda(F fn, bool& single) {
  if constexpr (std::is_invocable_r_v<Tensor, F, const Tensor&>) {
    single = true;
    return [fn = std::move(fn)](const std::vector<Tensor>& xs) { return std::vector<Tensor>{fn(xs.at(0))}; };
  } else {
    static_assert(std::is_invocable_r_v<std::vector<Tensor>, F, const std::vector<Tensor>&>,
                  "Lambda: fn must be callable as Tensor(const Tensor&) or "
                  "std::vector<Tensor>(const std::vector<Tensor>&)");
    single = false;
    return LambdaFunction::Fn(std::move(fn));
  }
}
// Wraps Tensor(const Tensor& x, const Tensor& mask) or the vector form.
template <class M>
LambdaFunction::MaskFn wrap_mask(M fn) {
  if constexpr (std::is_invocable_r_v<Tensor, M, const Tensor&, const Tensor&>) {
    return [fn = std::move(fn)](const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) {
      return std::vector<Tensor>{fn(xs.at(0), masks.empty() ? Tensor() : masks[0])};
    };
  } else {
    static_assert(std::is_invocable_r_v<std::vector<Tensor>, M, const std::vector<Tensor>&, const std::vector<Tensor>&>,
                  "Lambda: mask_fn must be callable as Tensor(const Tensor& x, const Tensor& mask) or "
                  "std::vector<Tensor>(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks)");
    return LambdaFunction::MaskFn(std::move(fn));
  }
}
void register_lambda_function(const std::string& name, LambdaFunction function);
}  // namespace detail

class LambdaLayer : public Layer {
 public:
  explicit LambdaLayer(LambdaFunction function, std::string registered_name = "");
  std::vector<Tensor> call_multi(const std::vector<Tensor>& xs, const CallArgs& args) override;
  std::vector<Tensor> compute_mask(const std::vector<Tensor>& xs, const std::vector<Tensor>& masks) override;
  // {"function": "<registered name>"}, or {"function": null, "registered": false}.
  [[nodiscard]] Config get_config() const override;
  // Rebuilds a registered Lambda; throws ValueError for an unregistered or unknown function.
  [[nodiscard]] static std::shared_ptr<Layer> from_config(const Config& config);

  [[nodiscard]] bool registered() const { return !registered_name_.empty(); }
  [[nodiscard]] const std::string& registered_name() const { return registered_name_; }
  void set_mask_fn(LambdaFunction::MaskFn mask_fn) { function_.mask_fn = std::move(mask_fn); }

 private:
  LambdaFunction function_;
  std::string registered_name_;
  bool warned_dropped_mask_ = false;
};

class Lambda : public LayerBuilder<Lambda, LambdaLayer> {
 public:
  // fn: Tensor(const Tensor&) or std::vector<Tensor>(const std::vector<Tensor>&).
  template <class F, class = std::enable_if_t<!std::is_base_of_v<LayerHandle<LambdaLayer>, std::decay_t<F>> &&
                                              !std::is_same_v<std::decay_t<F>, LambdaFunction>>>
  explicit Lambda(F fn) : Lambda(make_function(std::move(fn))) {}
  // A Lambda running the function registered under `name` (throws ValueError if there is none).
  [[nodiscard]] static Lambda from_registry(const std::string& name);

  // Computes the output mask: Tensor(const Tensor& x, const Tensor& mask) (mask may be
  // undefined) or the vector form over all inputs and masks.
  template <class M>
  Lambda& mask_fn(M fn) {
    ptr_->set_mask_fn(detail::wrap_mask(std::move(fn)));
    return *this;
  }
  [[nodiscard]] bool registered() const { return ptr_->registered(); }

 private:
  explicit Lambda(std::shared_ptr<LambdaLayer> layer) : LayerBuilder(std::move(layer)) {}
  explicit Lambda(LambdaFunction function);
  template <class F>
  static LambdaFunction make_function(F fn) {
    LambdaFunction f;
    f.fn = detail::wrap_lambda(std::move(fn), f.single_input);
    return f;
  }
};

// Registers `fn` (either callable form) under `name`, optionally with a mask function, so that
// Lambda::from_registry(name) and layers::from_config can build it. Re-registering a name
// replaces it.
template <class F>
void register_lambda(const std::string& name, F fn) {
  LambdaFunction f;
  f.fn = detail::wrap_lambda(std::move(fn), f.single_input);
  detail::register_lambda_function(name, std::move(f));
}
template <class F, class M>
void register_lambda(const std::string& name, F fn, M mask_fn) {
  LambdaFunction f;
  f.fn = detail::wrap_lambda(std::move(fn), f.single_input);
  f.mask_fn = detail::wrap_mask(std::move(mask_fn));
  detail::register_lambda_function(name, std::move(f));
}

}  // namespace normnet::layers
