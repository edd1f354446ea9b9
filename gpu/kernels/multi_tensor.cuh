// Multi-tensor optimizer kernels: the sum of squared gradients and AdamW
// over every trainable tensor, one launch each instead of one per tensor
// (a 60M-class LoRA model has 131 of them), over a table of tensors cut
// into chunks (tensor_chunks.cuh). Per-chunk partial sums are added in chunk
// order by one block afterwards, so the norm is bit-reproducible. A chunk
// starts a multiple of kTensorChunk elements into its tensor, so a tensor
// whose arrays are 16-byte aligned is read and written as float4 throughout.
#pragma once

#include "gpu/kernels/adamw.cuh"
#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"
#include "gpu/kernels/tensor_chunks.cuh"

namespace relora::gpu {

struct TensorEntry {
    float* param;
    const float* grad;
    float* m;
    float* v;
    __nv_bfloat16* copy;  // (n) the param's bf16 copy for the products, or null
    size_t n;
    float weightDecay;
    int stepOffset;  // this tensor's step − the step passed to the kernel
};

// partials(totalChunks) = Σ grad² over each chunk, in double
__global__ void multi_sum_squares_kernel(double* __restrict__ partials, const TensorEntry* __restrict__ table,
                                         const long long* __restrict__ firstChunk, int count,
                                         long long totalChunks) {
    __shared__ double shared[32];
    for (long long c = blockIdx.x; c < totalChunks; c += gridDim.x) {
        const int t = tensorOfChunk(firstChunk, count, c);
        const float* g = table[t].grad;
        const size_t begin = static_cast<size_t>(c - firstChunk[t]) * kTensorChunk;
        const size_t end = min(table[t].n, begin + kTensorChunk);
        double s = 0.0;
        size_t i = begin;
        if (aligned16(g)) {
            const size_t end4 = begin + (end - begin) / 4 * 4;
            for (size_t j = begin + 4 * threadIdx.x; j < end4; j += 4 * blockDim.x) {
                const float4 x = *reinterpret_cast<const float4*>(g + j);
                s += static_cast<double>(x.x) * x.x + static_cast<double>(x.y) * x.y +
                     static_cast<double>(x.z) * x.z + static_cast<double>(x.w) * x.w;
            }
            i = end4;
        }
        for (i += threadIdx.x; i < end; i += blockDim.x) {
            const double x = g[i];
            s += x * x;
        }
        s = blockSum(s, shared);
        if (threadIdx.x == 0) partials[c] = s;
    }
}

// AdamW on every chunk of every tensor; state(3): [1] clip, [2] skip. The
// table holds step offsets, not steps, so it stays the same from step to
// step and is uploaded only when the set of tensors changes. A tensor with
// a copy gets its new values rounded to bf16 there too (also on a skipped
// step: the copy then holds the unchanged values), so the next products need
// not convert the weight.
__global__ void multi_adamw_kernel(const TensorEntry* __restrict__ table, const long long* __restrict__ firstChunk,
                                   int count, long long totalChunks, long long step, float lr, float beta1,
                                   float beta2, float eps, const float* __restrict__ state) {
    const bool skip = state[2] != 0.0f;
    const float clip = state[1];
    for (long long c = blockIdx.x; c < totalChunks; c += gridDim.x) {
        const int t = tensorOfChunk(firstChunk, count, c);
        const TensorEntry e = table[t];
        const float decay = 1.0f - lr * e.weightDecay;
        const float tensorStep = static_cast<float>(step + e.stepOffset);
        const float bc1 = 1.0f - powf(beta1, tensorStep), bc2 = 1.0f - powf(beta2, tensorStep);
        const size_t begin = static_cast<size_t>(c - firstChunk[t]) * kTensorChunk;
        const size_t end = min(e.n, begin + kTensorChunk);
        const auto element = [&](float& p, float& m, float& v, float g) {
            if (!skip) adamwElement(p, m, v, g * clip, lr, beta1, beta2, eps, decay, bc1, bc2);
        };
        size_t i = begin;
        if (aligned16(e.param) && aligned16(e.grad) && aligned16(e.m) && aligned16(e.v) &&
            reinterpret_cast<uintptr_t>(e.copy) % 8 == 0) {
            const size_t end4 = begin + (end - begin) / 4 * 4;
            for (size_t j = begin + 4 * threadIdx.x; j < end4; j += 4 * blockDim.x) {
                float4 p = *reinterpret_cast<float4*>(e.param + j), m = *reinterpret_cast<float4*>(e.m + j),
                       v = *reinterpret_cast<float4*>(e.v + j);
                const float4 g = *reinterpret_cast<const float4*>(e.grad + j);
                element(p.x, m.x, v.x, g.x);
                element(p.y, m.y, v.y, g.y);
                element(p.z, m.z, v.z, g.z);
                element(p.w, m.w, v.w, g.w);
                if (!skip) {
                    *reinterpret_cast<float4*>(e.param + j) = p;
                    *reinterpret_cast<float4*>(e.m + j) = m;
                    *reinterpret_cast<float4*>(e.v + j) = v;
                }
                if (e.copy) storeAs4(e.copy + j, p);
            }
            i = end4;
        }
        for (i += threadIdx.x; i < end; i += blockDim.x) {
            element(e.param[i], e.m[i], e.v[i], e.grad[i]);
            if (e.copy) e.copy[i] = __float2bfloat16_rn(e.param[i]);
        }
    }
}

}  // namespace relora::gpu
