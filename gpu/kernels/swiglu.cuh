// SwiGLU: out = silu(gate) * up with gate|up side by side per token; gu,
// out and dgu each fp32 or bf16 (operand buffers). Block
// b takes token rows b, b + grid, ...; its threads take the row's columns
// (no 64-bit index division per element).
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

namespace relora::gpu {

__device__ inline float silu(float g) { return g / (1.0f + expf(-g)); }

// d(silu(g)·u)/dg and /du times d
__device__ inline float2 swigluGrad(float g, float u, float d) {
    const float sig = 1.0f / (1.0f + expf(-g));
    return make_float2(d * u * sig * (1.0f + g * (1.0f - sig)), d * g * sig);
}

// out(N,F) = silu(gu[:, :F]) * gu[:, F:], gu(N,2F). Vec4: F % 4 == 0 and
// aligned rows, four values per load and store.
template <bool Vec4, typename Out, typename In>
__global__ void swiglu_forward_kernel(Out* __restrict__ out, const In* __restrict__ gu, size_t N, size_t F) {
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const In* gate = gu + n * 2 * F;
        const In* up = gate + F;
        Out* o = out + n * F;
        if (Vec4) {
            for (size_t f = 4 * threadIdx.x; f < F; f += 4 * blockDim.x) {
                const float4 g = loadAs4(gate + f), u = loadAs4(up + f);
                storeAs4(o + f, make_float4(silu(g.x) * u.x, silu(g.y) * u.y, silu(g.z) * u.z, silu(g.w) * u.w));
            }
        } else {
            for (size_t f = threadIdx.x; f < F; f += blockDim.x)
                storeAs(o + f, silu(loadAsFloat(gate + f)) * loadAsFloat(up + f));
        }
    }
}

// dgu(N,2F) from dout(N,F) (overwritten): d gate = d·u·σ(g)(1 + g(1−σ(g))), d up = d·silu(g).
// out(N,F), when not null, receives the forward's output again, computed as
// the forward computes it: the pass that reads gu for the gradient also
// remakes the activation, rather than a forward pass of its own.
template <bool Vec4, typename Grad, typename In, typename DOut>
__global__ void swiglu_backward_kernel(Grad* __restrict__ dgu, Grad* __restrict__ out, const DOut* __restrict__ dout,
                                       const In* __restrict__ gu, size_t N, size_t F) {
    for (size_t n = blockIdx.x; n < N; n += gridDim.x) {
        const In* gate = gu + n * 2 * F;
        const In* up = gate + F;
        const DOut* d = dout + n * F;
        Grad* dgate = dgu + n * 2 * F;
        Grad* dup = dgate + F;
        Grad* o = out ? out + n * F : nullptr;
        if (Vec4) {
            for (size_t f = 4 * threadIdx.x; f < F; f += 4 * blockDim.x) {
                const float4 g = loadAs4(gate + f), u = loadAs4(up + f), df = loadAs4(d + f);
                const float2 x = swigluGrad(g.x, u.x, df.x), y = swigluGrad(g.y, u.y, df.y),
                             z = swigluGrad(g.z, u.z, df.z), w = swigluGrad(g.w, u.w, df.w);
                storeAs4(dgate + f, make_float4(x.x, y.x, z.x, w.x));
                storeAs4(dup + f, make_float4(x.y, y.y, z.y, w.y));
                if (o) storeAs4(o + f, make_float4(silu(g.x) * u.x, silu(g.y) * u.y, silu(g.z) * u.z, silu(g.w) * u.w));
            }
        } else {
            for (size_t f = threadIdx.x; f < F; f += blockDim.x) {
                const float g = loadAsFloat(gate + f), u = loadAsFloat(up + f);
                const float2 r = swigluGrad(g, u, loadAsFloat(d + f));
                storeAs(dgate + f, r.x);
                storeAs(dup + f, r.y);
                if (o) storeAs(o + f, silu(g) * u);
            }
        }
    }
}

}  // namespace relora::gpu
