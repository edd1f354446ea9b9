// Rotary embedding, "rotate half" convention (Hugging Face Llama), in place:
// the attention's forward pass rotates q|k with it. (The flash backward
// kernels rotate the gradients of q and k back themselves; the strided-product
// path uses this with sign -1.) The cos/sin tables come from
// core/RotaryTables, so both backends rotate by the same angles.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

namespace relora::gpu {

// (x1, x2) rotated by the angle whose cosine and sine are c and s.
__device__ inline void rotatePair(float& x1, float& x2, float c, float s) {
    const float a = x1;
    x1 = a * c - x2 * s;
    x2 = x2 * c + a * s;
}

// x (fp32 or bf16): B·T token rows of `rowStride` values, each holding H heads of D floats
// at its start; cosTable(T, D/2), sinTable(T, D/2). sign = -1 applies the
// inverse (transposed) rotation. Block b takes rows b, b + grid, ...; its
// threads take the row's H·D/2 pairs kWidth at a time: 4 (one 8- or
// 16-byte access each for x1s, x2s, cosines and sines) where D/2,
// rowStride and x are multiples of 4 elements, else 1.
template <int kWidth, typename Elem>
__global__ void rope_kernel(Elem* __restrict__ x, const float* __restrict__ cosTable,
                            const float* __restrict__ sinTable, size_t B, size_t T, size_t H,
                            size_t D, size_t rowStride, float sign) {
    const unsigned half = static_cast<unsigned>(D / 2), perHead = half / kWidth;
    const unsigned groups = static_cast<unsigned>(H) * perHead;
    for (size_t bt = blockIdx.x; bt < B * T; bt += gridDim.x) {
        const size_t t = bt % T;
        const float* c = cosTable + t * half;
        const float* s = sinTable + t * half;
        Elem* row = x + bt * rowStride;
        for (unsigned g = threadIdx.x; g < groups; g += blockDim.x) {
            const unsigned h = g / perHead, i = (g - h * perHead) * kWidth;
            Elem* v = row + h * D;
            if constexpr (kWidth == 4) {
                const float4 ci = *reinterpret_cast<const float4*>(c + i);
                const float4 si = *reinterpret_cast<const float4*>(s + i);
                float4 x1 = loadAs4(v + i), x2 = loadAs4(v + i + half);
                rotatePair(x1.x, x2.x, ci.x, sign * si.x);
                rotatePair(x1.y, x2.y, ci.y, sign * si.y);
                rotatePair(x1.z, x2.z, ci.z, sign * si.z);
                rotatePair(x1.w, x2.w, ci.w, sign * si.w);
                storeAs4(v + i, x1);
                storeAs4(v + i + half, x2);
            } else {
                float x1 = loadAsFloat(v + i), x2 = loadAsFloat(v + i + half);
                rotatePair(x1, x2, c[i], sign * s[i]);
                storeAs(v + i, x1);
                storeAs(v + i + half, x2);
            }
        }
    }
}

}  // namespace relora::gpu
