// Precision conversions. fp32 -> bf16 (round to nearest even) of a
// row-strided matrix into a packed one: out(rows, cols) = bf16(in(rows, cols)
// with row stride ld), to hand cuBLAS bf16 operands in the backend's bf16
// mode; fp32 -> fp64 for the Gram matrices of the batched spectra.
#pragma once

#include "gpu/kernels/common.cuh"

#include <cuda_bf16.h>

namespace relora::gpu {

__global__ void to_bf16_kernel(__nv_bfloat16* __restrict__ out, const float* __restrict__ in, size_t rows,
                               size_t cols, size_t ld) {
    if (cols % 4 == 0 && ld % 4 == 0 && (reinterpret_cast<uintptr_t>(in) & 15) == 0) {
        const size_t vecCols = cols / 4, n = rows * vecCols;
        for (size_t i = globalThread(); i < n; i += gridThreads()) {
            const size_t r = i / vecCols, c = (i % vecCols) * 4;
            const float4 x = *reinterpret_cast<const float4*>(in + r * ld + c);
            __nv_bfloat162 lo = __floats2bfloat162_rn(x.x, x.y), hi = __floats2bfloat162_rn(x.z, x.w);
            uint2 packed;
            packed.x = *reinterpret_cast<uint32_t*>(&lo);
            packed.y = *reinterpret_cast<uint32_t*>(&hi);
            *reinterpret_cast<uint2*>(out + r * cols + c) = packed;
        }
        return;
    }
    const size_t n = rows * cols;
    for (size_t i = globalThread(); i < n; i += gridThreads()) {
        const size_t r = i / cols, c = i % cols;
        out[i] = __float2bfloat16_rn(in[r * ld + c]);
    }
}

// out(n) = in(n) as double
__global__ void to_double_kernel(double* __restrict__ out, const float* __restrict__ in, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) out[i] = in[i];
}

}  // namespace relora::gpu
