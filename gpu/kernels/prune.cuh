// Magnitude pruning of optimizer moments, many tensors at once: their
// magnitudes, tagged with the tensor's index, go through one cub radix sort;
// then each tensor's two order statistics around its p-quantile are
// interpolated exactly as the CPU backend does (same double arithmetic, no
// contraction) and entries with |x| <= q are zeroed.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/tensor_chunks.cuh"

namespace relora::gpu {

// One tensor of a magnitude pruning: x(n), its magnitudes at keys[offset ..
// offset + n) once sorted, and the order statistics around its p-quantile
// (lo, hi, frac as the CPU backend computes them).
struct PruneEntry {
    float* x;
    size_t n;
    size_t offset;
    size_t lo, hi;
    double frac;
};

// keys(total) = (t << 32) | bits(|x_t[i]|): one radix sort of the keys sorts
// every tensor's magnitudes within its own range (non-negative floats order
// like their bit patterns).
__global__ void magnitude_keys_kernel(unsigned long long* __restrict__ keys, const PruneEntry* __restrict__ table,
                                      const long long* __restrict__ firstChunk, int count, long long chunks) {
    for (long long c = blockIdx.x; c < chunks; c += gridDim.x) {
        const int t = tensorOfChunk(firstChunk, count, c);
        const PruneEntry e = table[t];
        const size_t begin = static_cast<size_t>(c - firstChunk[t]) * kTensorChunk;
        const size_t end = min(e.n, begin + kTensorChunk);
        for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x)
            keys[e.offset + i] = (static_cast<unsigned long long>(t) << 32) | __float_as_uint(fabsf(e.x[i]));
    }
}

// x_t: zero entries with |x| <= q_t, q_t = s[lo] + frac·(s[hi] − s[lo]) from
// the sorted keys s of tensor t (same double arithmetic as the CPU backend).
__global__ void prune_magnitude_kernel(const PruneEntry* __restrict__ table, const long long* __restrict__ firstChunk,
                                       int count, long long chunks, const unsigned long long* __restrict__ sorted) {
    for (long long c = blockIdx.x; c < chunks; c += gridDim.x) {
        const int t = tensorOfChunk(firstChunk, count, c);
        const PruneEntry e = table[t];
        const float qlo = __uint_as_float(static_cast<unsigned>(sorted[e.offset + e.lo]));
        const float qhi = __uint_as_float(static_cast<unsigned>(sorted[e.offset + e.hi]));
        const float diff = __fsub_rn(qhi, qlo);
        const float q = static_cast<float>(
            __dadd_rn(static_cast<double>(qlo), __dmul_rn(e.frac, static_cast<double>(diff))));
        const size_t begin = static_cast<size_t>(c - firstChunk[t]) * kTensorChunk;
        const size_t end = min(e.n, begin + kTensorChunk);
        for (size_t i = begin + threadIdx.x; i < end; i += blockDim.x)
            if (fabsf(e.x[i]) <= q) e.x[i] = 0.0f;
    }
}

// x(n) = 0 where ref(n) == 0
__global__ void zero_where_zero_kernel(float* __restrict__ x, const float* __restrict__ ref, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads())
        if (ref[i] == 0.0f) x[i] = 0.0f;
}

}  // namespace relora::gpu
