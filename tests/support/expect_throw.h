// Error-message assertions shared by the test suites.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace normnet::testing {

// Expects `fn` to throw E with every one of `parts` in its message.
template <class E, class Fn>
void expect_throw_with(Fn fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    const std::string msg = e.what();
    for (const std::string& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

}  // namespace normnet::testing
