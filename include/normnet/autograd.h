// Autograd controls: recording on or off for the current thread.
#pragma once

namespace normnet {

// True while ops record their backward on the tape (the default, per thread).
[[nodiscard]] bool grad_enabled();
void set_grad_enabled(bool enabled);

// Turns recording off for its scope on this thread (inference, optimizer updates):
//   { normnet::NoGradGuard guard; auto y = model(x); }
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace normnet
