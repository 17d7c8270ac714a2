// Every op of normnet::ops (DESIGN.md §3).
#pragma once

#include "normnet/ops/conv.h"
#include "normnet/ops/elementwise.h"
#include "normnet/ops/l2_normalize.h"
#include "normnet/ops/linalg.h"
#include "normnet/ops/nn.h"
#include "normnet/ops/reduce.h"
#include "normnet/ops/shape_ops.h"
