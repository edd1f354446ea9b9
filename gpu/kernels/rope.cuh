// Rotary embedding, "rotate half" convention (Hugging Face Llama), in place.
// The cos/sin tables are computed on the host exactly as the CPU backend
// computes them, so both backends rotate by the same angles.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

namespace relora::gpu {

// x (fp32 or bf16): B·T token rows of `rowStride` values, each holding H heads of D floats
// at its start; cosTable(T, D/2), sinTable(T, D/2). sign = -1 applies the
// inverse (transposed) rotation. Block b takes rows b, b + grid, ...; its
// threads take the row's H·D/2 pairs (no 64-bit index division per element).
template <typename Elem>
__global__ void rope_kernel(Elem* __restrict__ x, const float* __restrict__ cosTable,
                            const float* __restrict__ sinTable, size_t B, size_t T, size_t H,
                            size_t D, size_t rowStride, float sign) {
    const unsigned half = static_cast<unsigned>(D / 2), pairs = static_cast<unsigned>(H) * half;
    for (size_t bt = blockIdx.x; bt < B * T; bt += gridDim.x) {
        const size_t t = bt % T;
        const float* c = cosTable + t * half;
        const float* s = sinTable + t * half;
        Elem* row = x + bt * rowStride;
        for (unsigned p = threadIdx.x; p < pairs; p += blockDim.x) {
            const unsigned h = p / half, i = p - h * half;
            Elem* v = row + h * D;
            const float ci = c[i], si = sign * s[i];
            const float x1 = loadAsFloat(v + i), x2 = loadAsFloat(v + i + half);
            storeAs(v + i, x1 * ci - x2 * si);
            storeAs(v + i + half, x2 * ci + x1 * si);
        }
    }
}

}  // namespace relora::gpu
