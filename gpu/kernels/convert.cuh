// Precision conversions. fp32 -> bf16 (round to nearest even) of a
// row-strided matrix into a packed one: out(rows, cols) = bf16(in(rows, cols)
// with row stride ld), to hand cuBLAS bf16 operands in the backend's bf16
// mode, and of many arrays in one launch; bf16 -> fp32; fp32 -> fp64 for the
// Gram matrices of the batched spectra.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"
#include "gpu/kernels/tensor_chunks.cuh"

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

// One array of a multi-tensor narrowing: dst(n) = bf16(src(n)).
struct NarrowEntry {
    __nv_bfloat16* dst;
    const float* src;
    size_t n;
};

// Every entry of the table (tensor_chunks.cuh) in one launch: LoRA's frozen
// weights and factors before their fold (Backend::foldLowRank). Four values
// an access where src is 16-byte and dst 8-byte aligned (a chunk starts a
// multiple of 4 elements in).
__global__ void multi_to_bf16_kernel(const NarrowEntry* __restrict__ table, const long long* __restrict__ firstChunk,
                                     int count, long long totalChunks) {
    for (long long c = blockIdx.x; c < totalChunks; c += gridDim.x) {
        const int t = tensorOfChunk(firstChunk, count, c);
        const NarrowEntry e = table[t];
        const size_t begin = static_cast<size_t>(c - firstChunk[t]) * kTensorChunk;
        const size_t end = min(e.n, begin + kTensorChunk);
        size_t i = begin;
        if (aligned16(e.src) && reinterpret_cast<uintptr_t>(e.dst) % 8 == 0) {
            const size_t end4 = begin + (end - begin) / 4 * 4;
            for (size_t j = begin + 4 * threadIdx.x; j < end4; j += 4 * blockDim.x)
                storeAs4(e.dst + j, *reinterpret_cast<const float4*>(e.src + j));
            i = end4;
        }
        for (i += threadIdx.x; i < end; i += blockDim.x) e.dst[i] = __float2bfloat16_rn(e.src[i]);
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
