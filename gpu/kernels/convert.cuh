// Precision conversions. fp32 -> bf16 (round to nearest even) of a
// row-strided matrix into a packed one: out(rows, cols) = bf16(in(rows, cols)
// with row stride ld), to hand cuBLAS bf16 operands in the backend's bf16
// mode; bf16 -> fp32; fp32 -> fp64 for the Gram matrices of the batched spectra.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

namespace relora::gpu {

__global__ void to_bf16_kernel(__nv_bfloat16* __restrict__ out, const float* __restrict__ in, size_t rows,
                               size_t cols, size_t ld) {
    if (cols % 4 == 0 && ld % 4 == 0 && (reinterpret_cast<uintptr_t>(in) & 15) == 0) {
        const size_t vecCols = cols / 4, n = rows * vecCols;
        for (size_t i = globalThread(); i < n; i += gridThreads()) {
            const size_t r = i / vecCols, c = (i % vecCols) * 4;
            storeAs4(out + r * cols + c, *reinterpret_cast<const float4*>(in + r * ld + c));
        }
        return;
    }
    const size_t n = rows * cols;
    for (size_t i = globalThread(); i < n; i += gridThreads()) {
        const size_t r = i / cols, c = i % cols;
        out[i] = __float2bfloat16_rn(in[r * ld + c]);
    }
}

// out(n) = in(n) as float (bf16 operand buffers widened for fp32 code paths)
__global__ void to_float_kernel(float* __restrict__ out, const __nv_bfloat16* __restrict__ in, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) out[i] = __bfloat162float(in[i]);
}

// out(n) = in(n) as double
__global__ void to_double_kernel(double* __restrict__ out, const float* __restrict__ in, size_t n) {
    for (size_t i = globalThread(); i < n; i += gridThreads()) out[i] = in[i];
}

}  // namespace relora::gpu
