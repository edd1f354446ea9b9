// Rotary embedding, "rotate half" convention (Hugging Face Llama), in place.
// The cos/sin tables are computed on the host exactly as the CPU backend
// computes them, so both backends rotate by the same angles.
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// x: B·T token rows of `rowStride` floats, each holding H heads of D floats
// at its start; cosTable(T, D/2), sinTable(T, D/2). sign = -1 applies the
// inverse (transposed) rotation.
__global__ void rope_kernel(float* __restrict__ x, const float* __restrict__ cosTable,
                            const float* __restrict__ sinTable, size_t B, size_t T, size_t H,
                            size_t D, size_t rowStride, float sign) {
    const size_t half = D / 2;
    const size_t total = B * T * H * half;
    for (size_t idx = globalThread(); idx < total; idx += gridThreads()) {
        const size_t i = idx % half;
        const size_t h = (idx / half) % H;
        const size_t bt = idx / (half * H);
        const size_t t = bt % T;
        const float c = cosTable[t * half + i], s = sign * sinTable[t * half + i];
        float* v = x + bt * rowStride + h * D;
        const float x1 = v[i], x2 = v[i + half];
        v[i] = x1 * c - x2 * s;
        v[i + half] = x2 * c + x1 * s;
    }
}

}  // namespace relora::gpu
