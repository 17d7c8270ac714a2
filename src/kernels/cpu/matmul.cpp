// Matrix products: a cached oneDNN matmul primitive for float32, naive loops for float64.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstring>

#include "kernels/cpu/dnnl_context.h"
#include "normnet/threading.h"

namespace normnet::kernels::cpu {
namespace {

using dims_t = dnnl::memory::dims;

bool all_ones(const int64_t* extents, int rank) {
  for (int i = 0; i < rank; ++i) if (extents[i] != 1) return false;
  return true;
}

// When b has no batch (all extents 1) and a is not transposed, a's batch rows are just more rows
// of one larger product: [B, M, K]·[K, N] = [B·M, K]·[K, N], which oneDNN runs faster.
MatmulDims fold_batch(const MatmulDims& d) {
  MatmulDims f = d;
  if (all_ones(d.b_batch, d.batch_rank) && (!d.transpose_a || all_ones(d.a_batch, d.batch_rank))) {
    for (int i = 0; i < d.batch_rank; ++i) f.m *= d.a_batch[i];
    f.batch_rank = 0;
  }
  return f;
}

// Strides of a stored [batch..., rows, cols] operand read as [batch..., R, C] (transposed or not).
dims_t operand_strides(const int64_t* batch, int rank, int64_t r, int64_t c, bool transposed) {
  dims_t strides(rank + 2);
  strides[rank] = transposed ? 1 : c;
  strides[rank + 1] = transposed ? r : 1;
  int64_t step = r * c;
  for (int i = rank - 1; i >= 0; --i) {
    strides[i] = step;
    step *= batch[i];
  }
  return strides;
}

dims_t operand_dims(const int64_t* batch, int rank, int64_t r, int64_t c) {
  dims_t dims(batch, batch + rank);
  dims.push_back(r);
  dims.push_back(c);
  return dims;
}

void fill_bias(float* c, const float* bias, int64_t rows, int64_t n) {
  for (int64_t i = 0; i < rows; ++i) {
    if (bias) std::memcpy(c + i * n, bias, sizeof(float) * n);
    else std::memset(c + i * n, 0, sizeof(float) * n);
  }
}

void matmul_dnnl(const float* a, const float* b, const float* bias, float* c, const MatmulDims& d) {
  const int rank = d.batch_rank;
  int64_t c_batch[kMaxMatmulBatchRank];
  for (int i = 0; i < rank; ++i) c_batch[i] = std::max(d.a_batch[i], d.b_batch[i]);
  const dims_t a_dims = operand_dims(d.a_batch, rank, d.m, d.k);
  const dims_t b_dims = operand_dims(d.b_batch, rank, d.k, d.n);
  const dims_t c_dims = operand_dims(c_batch, rank, d.m, d.n);
  const auto a_md = dnnl_plain_desc(a_dims, operand_strides(d.a_batch, rank, d.m, d.k, d.transpose_a));
  const auto b_md = dnnl_plain_desc(b_dims, operand_strides(d.b_batch, rank, d.k, d.n, d.transpose_b));
  const auto c_md = dnnl_plain_desc(c_dims, operand_strides(c_batch, rank, d.m, d.n, false));
  dims_t bias_dims(rank + 2, 1);
  bias_dims.back() = d.n;
  const auto bias_md = bias ? dnnl_plain_desc(bias_dims, operand_strides(bias_dims.data(), rank, 1, d.n, false))
                            : dnnl::memory::desc();

  DnnlKey key{kDnnlMatmul, rank, d.m, d.k, d.n, d.transpose_a, d.transpose_b, bias != nullptr};
  key.insert(key.end(), d.a_batch, d.a_batch + rank);
  key.insert(key.end(), d.b_batch, d.b_batch + rank);
  const DnnlPrimitive& p = dnnl_cached_primitive(std::move(key), [&](const dnnl::primitive_attr& attr) {
    const dnnl::matmul::desc desc = bias ? dnnl::matmul::desc(a_md, b_md, bias_md, c_md)
                                         : dnnl::matmul::desc(a_md, b_md, c_md);
    return dnnl::matmul::primitive_desc(desc, attr, dnnl_engine());
  });
  std::unordered_map<int, dnnl::memory> args{
      {DNNL_ARG_SRC, dnnl_wrap(a_md, a)}, {DNNL_ARG_WEIGHTS, dnnl_wrap(b_md, b)}, {DNNL_ARG_DST, dnnl_wrap(c_md, c)}};
  if (bias) args[DNNL_ARG_BIAS] = dnnl_wrap(bias_md, bias);
  dnnl_execute(p, args);
}

}  // namespace

int64_t matmul_batch_count(const MatmulDims& d) {
  int64_t count = 1;
  for (int i = 0; i < d.batch_rank; ++i) count *= std::max(d.a_batch[i], d.b_batch[i]);
  return count;
}

void matmul_forward(const float* a, const float* b, const float* bias, float* c, const MatmulDims& dims) {
  const MatmulDims d = fold_batch(dims);
  const int64_t rows = matmul_batch_count(d) * d.m;
  if (rows == 0 || d.n == 0) return;
  if (d.k == 0) return fill_bias(c, bias, rows, d.n);  // an empty sum
  try {
    matmul_dnnl(a, b, bias, c, d);
  } catch (const dnnl::error&) {
    dnnl_note_fallback();
    matmul_reference(a, b, bias, c, d);
  }
}

void matmul_forward(const double* a, const double* b, const double* bias, double* c, const MatmulDims& d) {
  matmul_reference(a, b, bias, c, fold_batch(d));
}

template <class T>
void matmul_reference(const T* a, const T* b, const T* bias, T* c, const MatmulDims& d) {
  const int64_t batch = matmul_batch_count(d);
  const int64_t M = d.m, K = d.k, N = d.n;
  // Element strides of each batch axis in a and b (0 along an axis they are broadcast on).
  int64_t extent[kMaxMatmulBatchRank], a_step[kMaxMatmulBatchRank], b_step[kMaxMatmulBatchRank];
  int64_t a_size = M * K, b_size = K * N;
  for (int i = d.batch_rank - 1; i >= 0; --i) {
    extent[i] = std::max(d.a_batch[i], d.b_batch[i]);
    a_step[i] = d.a_batch[i] == 1 ? 0 : a_size;
    b_step[i] = d.b_batch[i] == 1 ? 0 : b_size;
    a_size *= d.a_batch[i];
    b_size *= d.b_batch[i];
  }
  // A(i, k) and B(k, j) of op(a), op(b) within one batch matrix.
  const int64_t a_row = d.transpose_a ? 1 : K, a_col = d.transpose_a ? M : 1;
  const int64_t b_row = d.transpose_b ? 1 : N, b_col = d.transpose_b ? K : 1;
#pragma omp parallel for collapse(2) num_threads(get_num_threads()) if (batch * M * N * K > 32768)
  for (int64_t bi = 0; bi < batch; ++bi) {
    for (int64_t i = 0; i < M; ++i) {
      int64_t rest = bi, a_off = 0, b_off = 0;
      for (int r = d.batch_rank - 1; r >= 0; --r) {
        const int64_t idx = rest % extent[r];
        rest /= extent[r];
        a_off += idx * a_step[r];
        b_off += idx * b_step[r];
      }
      const T* pa = a + a_off + i * a_row;
      T* pc = c + (bi * M + i) * N;
      for (int64_t j = 0; j < N; ++j) {
        const T* pb = b + b_off + j * b_col;
        double acc = bias ? static_cast<double>(bias[j]) : 0.0;
        for (int64_t k = 0; k < K; ++k) acc += static_cast<double>(pa[k * a_col]) * static_cast<double>(pb[k * b_row]);
        pc[j] = static_cast<T>(acc);
      }
    }
  }
}

template <class T>
void bias_backward(const T* dy, T* dbias, int64_t rows, int64_t n) {
  // Columns in blocks of 64 per thread; rows summed in order in double (deterministic).
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for num_threads(get_num_threads()) if (blocks > 1 && rows * n > 65536)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kBlock, width = std::min(kBlock, n - c0);
    double acc[kBlock] = {};
    for (int64_t r = 0; r < rows; ++r) {
      const T* row = dy + r * n + c0;
      for (int64_t j = 0; j < width; ++j) acc[j] += static_cast<double>(row[j]);
    }
    for (int64_t j = 0; j < width; ++j) dbias[c0 + j] = static_cast<T>(acc[j]);
  }
}

template void matmul_reference<float>(const float*, const float*, const float*, float*, const MatmulDims&);
template void matmul_reference<double>(const double*, const double*, const double*, double*, const MatmulDims&);
template void bias_backward<float>(const float*, float*, int64_t, int64_t);
template void bias_backward<double>(const double*, double*, int64_t, int64_t);

}  // namespace normnet::kernels::cpu
