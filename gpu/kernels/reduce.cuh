// Deterministic reductions in double: a fixed grid writes one partial sum
// per block, one block adds the partials in a fixed order. Also the global
// gradient norm's finish (clip factor, skip flag).
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

constexpr int kReduceBlocks = 1024;   // at most this many partials

// partials(gridDim.x) = Σ x (or Σ x²) over a grid-stride slice of x(n)
template <bool Squares>
__global__ void reduce_partials_kernel(double* __restrict__ partials, const float* __restrict__ x, size_t n) {
    __shared__ double shared[32];
    double s = 0.0;
    for (size_t i = globalThread(); i < n; i += gridThreads()) {
        const double v = x[i];
        s += Squares ? v * v : v;
    }
    s = blockSum(s, shared);
    if (threadIdx.x == 0) partials[blockIdx.x] = s;
}

// out[0] = Σ partials(count)  (or out[0] += when accumulate); one block
__global__ void reduce_finish_kernel(float* __restrict__ out, const double* __restrict__ partials, int count,
                                     int accumulate) {
    __shared__ double shared[32];
    double s = 0.0;
    for (int i = threadIdx.x; i < count; i += blockDim.x) s += partials[i];
    s = blockSum(s, shared);
    if (threadIdx.x == 0) out[0] = accumulate ? out[0] + static_cast<float>(s) : static_cast<float>(s);
}

// state(3) = {norm, clip factor, skip flag} from acc[0] = Σ g², loss[0]
__global__ void finish_grad_norm_kernel(float* __restrict__ state, const float* __restrict__ acc,
                                        const float* __restrict__ loss, float maxNorm) {
    const float norm = sqrtf(acc[0]);
    state[0] = norm;
    state[1] = maxNorm > 0.0f ? fminf(1.0f, maxNorm / (norm + 1e-6f)) : 1.0f;
    state[2] = isfinite(norm) && isfinite(loss[0]) ? 0.0f : 1.0f;
}

}  // namespace relora::gpu
