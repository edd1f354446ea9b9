// SwiGLU: out = silu(gate) * up with gate|up side by side per token. Block
// b takes token rows b, b + grid, ...; its threads take the row's columns
// (no 64-bit index division per element).
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// out(N,F) = silu(gu[:, :F]) * gu[:, F:], gu(N,2F)
__global__ void swiglu_forward_kernel(float* __restrict__ out, const float* __restrict__ gu, size_t N,
                                      size_t F) {
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float* gate = gu + n * 2 * F;
        const float* up = gate + F;
        float* o = out + n * F;
        for (size_t f = threadIdx.x; f < F; f += blockDim.x) {
            const float g = gate[f];
            o[f] = g / (1.0f + expf(-g)) * up[f];
        }
    }
}

// dgu(N,2F) from dout(N,F) (overwritten): d gate = d·u·σ(g)(1 + g(1−σ(g))), d up = d·silu(g)
__global__ void swiglu_backward_kernel(float* __restrict__ dgu, const float* __restrict__ dout,
                                       const float* __restrict__ gu, size_t N, size_t F) {
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const float* gate = gu + n * 2 * F;
        const float* up = gate + F;
        const float* d = dout + n * F;
        float* dgate = dgu + n * 2 * F;
        float* dup = dgate + F;
        for (size_t f = threadIdx.x; f < F; f += blockDim.x) {
            const float g = gate[f], u = up[f], df = d[f];
            const float sig = 1.0f / (1.0f + expf(-g));
            const float silu = g * sig;
            dgate[f] = df * u * sig * (1.0f + g * (1.0f - sig));
            dup[f] = df * silu;
        }
    }
}

}  // namespace relora::gpu
