// Causal softmax of attention scores, forward and backward, on P(B·H, T, T)
// rows: row t keeps keys 0..t, entries beyond t are zero. One warp per row.
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// P(rows = B·H·T, T) in place: scores -> probabilities.
__global__ void causal_softmax_kernel(float* __restrict__ P, size_t rows, size_t T) {
    const size_t warpsPerBlock = blockDim.x / 32, lane = threadIdx.x & 31;
    for (size_t r = blockIdx.x * warpsPerBlock + threadIdx.x / 32; r < rows; r += gridDim.x * warpsPerBlock) {
        float* row = P + r * T;
        const size_t t = r % T;   // query position
        float mx = -INFINITY;
        for (size_t j = lane; j <= t; j += 32) mx = fmaxf(mx, row[j]);
        mx = warpMax(mx);
        float s = 0.0f;
        for (size_t j = lane; j <= t; j += 32) {
            const float e = expf(row[j] - mx);
            row[j] = e;
            s += e;
        }
        s = warpSum(s);
        const float inv = 1.0f / s;
        for (size_t j = lane; j < T; j += 32) row[j] = j <= t ? row[j] * inv : 0.0f;
    }
}

// dS(rows, T) in place from dP: dS = P ⊙ (dP − Σ_j P·dP) · scale on keys
// 0..t, zero beyond. P(rows, T) the saved probabilities.
__global__ void causal_softmax_backward_kernel(float* __restrict__ dP, const float* __restrict__ P,
                                               size_t rows, size_t T, float scale) {
    const size_t warpsPerBlock = blockDim.x / 32, lane = threadIdx.x & 31;
    for (size_t r = blockIdx.x * warpsPerBlock + threadIdx.x / 32; r < rows; r += gridDim.x * warpsPerBlock) {
        float* d = dP + r * T;
        const float* p = P + r * T;
        const size_t t = r % T;
        float dot = 0.0f;
        for (size_t j = lane; j <= t; j += 32) dot += p[j] * d[j];
        dot = warpSum(dot);
        for (size_t j = lane; j < T; j += 32) d[j] = j <= t ? p[j] * (d[j] - dot) * scale : 0.0f;
    }
}

}  // namespace relora::gpu
