// The checks fit, evaluate, predict and the batch calls run on their arrays before the first batch:
// one array per input (and per output for targets), real tensors with one sample count, and each
// input's dtype, with the model, the array and the way to convert named in the error.
#include "training/data_checks.h"

#include "normnet/error.h"
#include "training/model_naming.h"

namespace normnet::detail {
namespace {

// x[i] must have the dtype of the model's Input i (an unbuilt Sequential takes its Input from
// the data). Caught here, before the first batch, with the way to convert.
void check_input_dtype(const FunctionalModel& m, const Tensor& x, std::size_t i) {
  if (unbuilt_sequential(m)) return;
  const Tensor& input = m.graph_inputs()[i];
  const DType want = input.dtype(), got = x.dtype();
  if (want == got) return;
  std::string hint;
  if (want == DType::kUInt8) {
    hint =
        "pass the image bytes as uint8 (io::read_idx_images(path, DType::kUInt8), "
        "datasets::fashion_mnist(dir, DType::kUInt8)), or build the model on a float Input";
  } else if (got == DType::kUInt8) {
    hint =
        "declare the Input as uint8 and rescale inside the model (Input(shape, DType::kUInt8) then "
        "layers::Rescaling(1.0 / 255)), or cast x with ops::cast";
  } else {
    hint = str("cast it to ", dtype_name(want), " with ops::cast");
  }
  throw TypeError(str(label(m), ": x[", i, "] is ", dtype_name(got), " of shape ", x.shape(), " but input ",
                      i, " ('", layer_of(input), "') expects ", dtype_name(want), "; ", hint));
}

// Checks counts and sample axes of x (one per input) and y (one per output; skipped if null).
}  // namespace

int64_t check_data(const FunctionalModel& m, const std::string& what, const std::vector<Tensor>& x,
                   const std::vector<Tensor>* y, std::size_t outputs) {
  const std::string who = label(m);
  if (x.size() != input_count(m)) {
    throw ValueError(
        str(who, ": expected ", input_count(m), " input array(s) in ", what, ", got ", x.size()));
  }
  if (y && y->size() != outputs) {
    throw ValueError(str(who, ": expected ", outputs, " target array(s) in ", what,
                         " (one per output: ", join(output_names(m)), "), got ", y->size()));
  }
  int64_t n = -1;
  std::string first;
  auto check = [&](const Tensor& t, const std::string& name) {
    if (!t.defined() || t.is_symbolic() || t.dim() == 0) {
      throw ValueError(str(who, ": ", name, " must be a real tensor with a sample axis, got ",
                           t.defined()
                               ? str(t.is_symbolic() ? "a symbolic tensor of shape " : "shape ", t.shape())
                               : std::string("an undefined tensor")));
    }
    if (n < 0) {
      n = t.shape()[0];
      first = str(name, " has shape ", t.shape());
    } else if (t.shape()[0] != n) {
      throw ValueError(str(who, ": all arrays in ", what, " need the same number of samples: ", first, " (",
                           n, " samples) but ", name, " has shape ", t.shape(), " (", t.shape()[0],
                           " samples)"));
    }
  };
  for (std::size_t i = 0; i < x.size(); ++i) {
    check(x[i], str("x[", i, "]"));
    check_input_dtype(m, x[i], i);
  }
  if (y) {
    for (std::size_t i = 0; i < y->size(); ++i) check((*y)[i], str("y[", i, "]"));
  }
  if (n == 0) throw ValueError(str(who, ": ", what, " has no samples (", first, ")"));
  return n;
}

}  // namespace normnet::detail
