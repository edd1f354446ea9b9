// Magnitude pruning of an optimizer moment: |x| is sorted by the caller
// (cub radix sort into cached scratch); this kernel reads the two order
// statistics around the p-quantile, interpolates exactly as the CPU backend
// does (same double arithmetic, no contraction), and zeroes |x| <= q.
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// mag(n) = |x(n)|
__global__ void abs_kernel(float* __restrict__ mag, const float* __restrict__ x, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) mag[i] = fabsf(x[i]);
}

// x(n): zero entries with |x| <= q, q = sorted[lo] + frac·(sorted[hi] − sorted[lo])
__global__ void prune_magnitude_kernel(float* __restrict__ x, size_t n, const float* __restrict__ sorted,
                                       size_t lo, size_t hi, double frac) {
    const float qlo = sorted[lo], qhi = sorted[hi];
    const float diff = __fsub_rn(qhi, qlo);
    const float q = static_cast<float>(__dadd_rn(static_cast<double>(qlo), __dmul_rn(frac, static_cast<double>(diff))));
    for (size_t i = globalThread(); i < n; i += gridThreads())
        if (fabsf(x[i]) <= q) x[i] = 0.0f;
}

// x(n) = 0 where ref(n) == 0
__global__ void zero_where_zero_kernel(float* __restrict__ x, const float* __restrict__ ref, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads())
        if (ref[i] == 0.0f) x[i] = 0.0f;
}

}  // namespace relora::gpu
