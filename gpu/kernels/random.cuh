// Counter-based random fills (core/CounterRng.h): value i of stream `seed`
// depends only on (seed, i), so these kernels draw exactly what the CPU
// backend draws (uniform draws bit for bit; normal draws up to the last bits
// of logf/cosf).
#pragma once

#include "core/CounterRng.h"
#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// x(n) = stddev * N(0,1)
__global__ void fill_normal_kernel(float* __restrict__ x, size_t n, float stddev, uint64_t seed) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) x[i] = stddev * standardNormal(seed, i);
}

// x(n) = uniform(-bound, bound)
__global__ void fill_uniform_kernel(float* __restrict__ x, size_t n, float bound, uint64_t seed) {
    for (size_t i = globalThread(); i < n; i += gridThreads())
        x[i] = bound * __fsub_rn(__fmul_rn(2.0f, uniform01(seed, i)), 1.0f);
}

// mask(n) = uniform01 >= p ? keep : 0, keep = 1/(1-p)  (inverted dropout)
__global__ void dropout_mask_kernel(float* __restrict__ mask, size_t n, float p, float keep, uint64_t seed) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) mask[i] = uniform01(seed, i) >= p ? keep : 0.0f;
}

// x(n): entries with uniform01 < p become 0
__global__ void prune_random_kernel(float* __restrict__ x, size_t n, float p, uint64_t seed) {
    for (size_t i = globalThread(); i < n; i += gridThreads())
        if (uniform01(seed, i) < p) x[i] = 0.0f;
}

}  // namespace relora::gpu
