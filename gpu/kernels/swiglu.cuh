// SwiGLU: out = silu(gate) * up with gate|up side by side per token; gu,
// out and dgu each fp32 or bf16 (operand buffers). Block
// b takes token rows b, b + grid, ...; its threads take the row's columns
// (no 64-bit index division per element).
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

namespace relora::gpu {

// out(N,F) = silu(gu[:, :F]) * gu[:, F:], gu(N,2F)
template <typename Out, typename In>
__global__ void swiglu_forward_kernel(Out* __restrict__ out, const In* __restrict__ gu, size_t N, size_t F) {
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const In* gate = gu + n * 2 * F;
        const In* up = gate + F;
        Out* o = out + n * F;
        for (size_t f = threadIdx.x; f < F; f += blockDim.x) {
            const float g = loadAsFloat(gate + f);
            storeAs(o + f, g / (1.0f + expf(-g)) * loadAsFloat(up + f));
        }
    }
}

// dgu(N,2F) from dout(N,F) (overwritten): d gate = d·u·σ(g)(1 + g(1−σ(g))), d up = d·silu(g)
template <typename Grad, typename In, typename DOut>
__global__ void swiglu_backward_kernel(Grad* __restrict__ dgu, const DOut* __restrict__ dout,
                                       const In* __restrict__ gu, size_t N, size_t F) {
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const In* gate = gu + n * 2 * F;
        const In* up = gate + F;
        const DOut* d = dout + n * F;
        Grad* dgate = dgu + n * 2 * F;
        Grad* dup = dgate + F;
        for (size_t f = threadIdx.x; f < F; f += blockDim.x) {
            const float g = loadAsFloat(gate + f), u = loadAsFloat(up + f), df = loadAsFloat(d + f);
            const float sig = 1.0f / (1.0f + expf(-g));
            const float silu = g * sig;
            storeAs(dgate + f, df * u * sig * (1.0f + g * (1.0f - sig)));
            storeAs(dup + f, df * silu);
        }
    }
}

}  // namespace relora::gpu
