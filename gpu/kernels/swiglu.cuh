// SwiGLU: out = silu(gate) * up with gate|up side by side per token.
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// out(N,F) = silu(gu[:, :F]) * gu[:, F:], gu(N,2F)
__global__ void swiglu_forward_kernel(float* __restrict__ out, const float* __restrict__ gu, size_t N,
                                      size_t F) {
    const size_t total = N * F;
    for (size_t i = globalThread(); i < total; i += gridThreads()) {
        const size_t n = i / F, f = i - n * F;
        const float g = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f];
        out[i] = g / (1.0f + expf(-g)) * u;
    }
}

// dgu(N,2F) from dout(N,F) (overwritten): d gate = d·u·σ(g)(1 + g(1−σ(g))), d up = d·silu(g)
__global__ void swiglu_backward_kernel(float* __restrict__ dgu, const float* __restrict__ dout,
                                       const float* __restrict__ gu, size_t N, size_t F) {
    const size_t total = N * F;
    for (size_t i = globalThread(); i < total; i += gridThreads()) {
        const size_t n = i / F, f = i - n * F;
        const float g = gu[n * 2 * F + f], u = gu[n * 2 * F + F + f], d = dout[i];
        const float sig = 1.0f / (1.0f + expf(-g));
        const float silu = g * sig;
        dgu[n * 2 * F + f] = d * u * sig * (1.0f + g * (1.0f - sig));
        dgu[n * 2 * F + F + f] = d * silu;
    }
}

}  // namespace relora::gpu
