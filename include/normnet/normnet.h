// normnet: a fast, exact, Keras-style deep-learning library. This header includes everything.
#pragma once

#include "normnet/autograd.h"
#include "normnet/error.h"
#include "normnet/ops.h"
#include "normnet/shape.h"
#include "normnet/tensor.h"
#include "normnet/threading.h"
