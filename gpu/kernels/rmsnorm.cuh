// RMSNorm (weight only): forward one warp per row; backward one warp per row
// with dw accumulated deterministically: each block keeps per-warp column
// sums in shared memory, folds them in warp order into partial(blocks, C),
// and a second kernel adds the block partials in block order into dw.
#pragma once

#include "gpu/kernels/common.cuh"

namespace relora::gpu {

// out(N,C) = x * rstd * w; rstd(N) = 1/sqrt(mean(x^2) + eps). One warp per row.
__global__ void rmsnorm_forward_kernel(float* __restrict__ out, float* __restrict__ rstd,
                                       const float* __restrict__ x, const float* __restrict__ w,
                                       size_t N, size_t C, float eps) {
    const size_t warpsPerBlock = blockDim.x / 32;
    const size_t lane = threadIdx.x & 31;
    for (size_t n = blockIdx.x * warpsPerBlock + threadIdx.x / 32; n < N; n += gridDim.x * warpsPerBlock) {
        const float* xr = x + n * C;
        float ss = 0.0f;
        for (size_t c = lane; c < C; c += 32) ss += xr[c] * xr[c];
        ss = warpSum(ss);
        const float r = 1.0f / sqrtf(ss / static_cast<float>(C) + eps);
        if (lane == 0) rstd[n] = r;
        float* o = out + n * C;
        for (size_t c = lane; c < C; c += 32) o[c] = xr[c] * r * w[c];
    }
}

// dx(N,C) += r·w·g − r³·(Σ g·w·x)/C · x ;  partial(gridDim.x, C) = this
// block's Σ over its rows of g·x·r. Rows are split into contiguous chunks per
// block; warp k of a block takes rows k, k+W, ... of its chunk.
// Dynamic shared memory: (blockDim.x/32) * C floats.
__global__ void rmsnorm_backward_kernel(float* __restrict__ dx, float* __restrict__ partial,
                                        const float* __restrict__ dout, const float* __restrict__ x,
                                        const float* __restrict__ w, const float* __restrict__ rstd,
                                        size_t N, size_t C, size_t rowsPerBlock) {
    extern __shared__ float dwShared[];  // (warps, C)
    const size_t warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    float* dwWarp = dwShared + warp * C;
    for (size_t c = lane; c < C; c += 32) dwWarp[c] = 0.0f;
    const size_t r0 = blockIdx.x * rowsPerBlock;
    const size_t r1 = min(N, r0 + rowsPerBlock);
    for (size_t n = r0 + warp; n < r1; n += warps) {
        const float* xr = x + n * C;
        const float* g = dout + n * C;
        const float r = rstd[n];
        float dot = 0.0f;
        for (size_t c = lane; c < C; c += 32) dot += g[c] * w[c] * xr[c];
        dot = warpSum(dot);
        const float k = r * r * r * dot / static_cast<float>(C);
        float* d = dx + n * C;
        for (size_t c = lane; c < C; c += 32) {
            d[c] += r * w[c] * g[c] - k * xr[c];
            dwWarp[c] += g[c] * xr[c] * r;
        }
    }
    __syncthreads();
    for (size_t c = threadIdx.x; c < C; c += blockDim.x) {
        float s = 0.0f;
        for (size_t k = 0; k < warps; ++k) s += dwShared[k * C + c];
        partial[blockIdx.x * C + c] = s;
    }
}

// dw(C) += Σ over blocks (in order) of partial(blocks, C)
__global__ void rmsnorm_dw_reduce_kernel(float* __restrict__ dw, const float* __restrict__ partial,
                                         size_t blocks, size_t C) {
    for (size_t c = globalThread(); c < C; c += gridThreads()) {
        float s = 0.0f;
        for (size_t b = 0; b < blocks; ++b) s += partial[b * C + c];
        dw[c] += s;
    }
}

}  // namespace relora::gpu
