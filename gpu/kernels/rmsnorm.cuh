// RMSNorm (weight only): forward and backward one warp per row (float4
// loads where rows allow) with dw accumulated deterministically: each
// block keeps per-warp column sums in shared memory, folds them in warp order
// into partial(blocks, C), and a second kernel adds the block partials in a
// fixed order into dw.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

namespace relora::gpu {

// Per element of the forward pass: the sum of squares and x·r·w; for one
// float and for four (float4 rows).
__device__ inline float rmsSquares(float x) { return x * x; }
__device__ inline float rmsSquares(float4 x) { return x.x * x.x + x.y * x.y + x.z * x.z + x.w * x.w; }
template <typename Out>
__device__ inline void rmsStore(Out* o, float x, float r, float w) { storeAs(o, x * r * w); }
template <typename Out>
__device__ inline void rmsStore(Out* o, float4 x, float r, float4 w) {
    storeAs4(o, make_float4(x.x * r * w.x, x.y * r * w.y, x.z * r * w.z, x.w * r * w.w));
}

// out(N,C) = x * rstd * w; rstd(N) = 1/sqrt(mean(x^2) + eps). One warp per
// row; Vec is float4 when C % 4 == 0 (rows 16-byte aligned), else float.
// kPerLane > 0: rows of at most 32·kPerLane Vecs, which each lane keeps in
// registers between the sum of squares and the output, all of a row's loads
// issued at once; kPerLane = 0 (any width) reads the row twice.
template <typename Vec, int kPerLane, typename Out>
__global__ void rmsnorm_forward_kernel(Out* __restrict__ out, float* __restrict__ rstd,
                                       const float* __restrict__ x, const float* __restrict__ w,
                                       size_t N, size_t C, float eps) {
    constexpr size_t kWidth = sizeof(Vec) / sizeof(float);
    const size_t warpsPerBlock = blockDim.x / 32;
    const size_t lane = threadIdx.x & 31, vecs = C / kWidth;
    const Vec* wv = reinterpret_cast<const Vec*>(w);
    for (size_t n = blockIdx.x * warpsPerBlock + threadIdx.x / 32; n < N; n += gridDim.x * warpsPerBlock) {
        const Vec* xr = reinterpret_cast<const Vec*>(x + n * C);
        Out* o = out + n * C;
        float ss = 0.0f;
        if constexpr (kPerLane > 0) {
            Vec xs[kPerLane];
#pragma unroll
            for (int i = 0; i < kPerLane; ++i) {
                const size_t c = lane + 32 * static_cast<size_t>(i);
                xs[i] = c < vecs ? xr[c] : Vec{};
                ss += rmsSquares(xs[i]);
            }
            const float r = 1.0f / sqrtf(warpSum(ss) / static_cast<float>(C) + eps);
            if (lane == 0) rstd[n] = r;
#pragma unroll
            for (int i = 0; i < kPerLane; ++i) {
                const size_t c = lane + 32 * static_cast<size_t>(i);
                if (c < vecs) rmsStore(o + c * kWidth, xs[i], r, wv[c]);
            }
        } else {
            for (size_t c = lane; c < vecs; c += 32) ss += rmsSquares(xr[c]);
            const float r = 1.0f / sqrtf(warpSum(ss) / static_cast<float>(C) + eps);
            if (lane == 0) rstd[n] = r;
            for (size_t c = lane; c < vecs; c += 32) rmsStore(o + c * kWidth, xr[c], r, wv[c]);
        }
    }
}

// Per element of the backward pass: dx += r·w·g − k·x, the warp's dw sum
// += g·x·r; for one float and for four (float4 rows).
__device__ inline float rmsDot(float g, float w, float x) { return g * w * x; }
__device__ inline float rmsDot(float4 g, float4 w, float4 x) {
    return g.x * w.x * x.x + g.y * w.y * x.y + g.z * w.z * x.z + g.w * w.w * x.w;
}
__device__ inline void rmsStep(float& d, float& dwSum, float g, float x, float w, float r, float k) {
    d += r * w * g - k * x;
    dwSum += g * x * r;
}
__device__ inline void rmsStep(float4& d, float4& dwSum, float4 g, float4 x, float4 w, float r, float k) {
    rmsStep(d.x, dwSum.x, g.x, x.x, w.x, r, k);
    rmsStep(d.y, dwSum.y, g.y, x.y, w.y, r, k);
    rmsStep(d.z, dwSum.z, g.z, x.z, w.z, r, k);
    rmsStep(d.w, dwSum.w, g.w, x.w, w.w, r, k);
}

// Element c of a row as Vec: four values from c·4, or the one at c.
template <typename Vec, typename Elem>
__device__ inline Vec loadVec(const Elem* row, size_t c) {
    if constexpr (sizeof(Vec) == sizeof(float4)) return loadAs4(row + 4 * c);
    else return loadAsFloat(row + c);
}
__device__ inline void storeVec(__nv_bfloat16* row, size_t c, float4 v) { storeAs4(row + 4 * c, v); }
__device__ inline void storeVec(__nv_bfloat16* row, size_t c, float v) { storeAs(row + c, v); }

// dx(N,C) += r·w·g − r³·(Σ g·w·x)/C · x ;  partial(gridDim.x, C) = this
// block's Σ over its rows of g·x·r. Rows are split into contiguous chunks per
// block; warp k of a block takes rows k, k+W, ... of its chunk. Vec is float4
// when C % 4 == 0 (every row then starts 16-byte aligned), else float. The
// incoming gradient g = dout is fp32 or bf16 (an operand buffer). dx16, when
// not null, receives dx rounded to bf16 (N, C) as well: the products after
// the norm take dx as a bf16 operand, and this write is cheaper than their
// own conversion pass. kPerLane > 0: rows of at most 32·kPerLane Vecs, whose
// g and x each lane keeps in registers between the dot product and the
// update; all of a row's loads are issued at once, where the loop over
// memory (kPerLane = 0, any width) has two in flight and reads g and x twice.
// Dynamic shared memory: (blockDim.x/32) * C floats.
template <typename Vec, int kPerLane, typename G>
__global__ void rmsnorm_backward_kernel(float* __restrict__ dx, __nv_bfloat16* __restrict__ dx16,
                                        float* __restrict__ partial,
                                        const G* __restrict__ dout, const float* __restrict__ x,
                                        const float* __restrict__ w, const float* __restrict__ rstd,
                                        size_t N, size_t C, size_t rowsPerBlock) {
    extern __shared__ float dwShared[];  // (warps, C)
    constexpr size_t kWidth = sizeof(Vec) / sizeof(float);
    const size_t warps = blockDim.x / 32, warp = threadIdx.x / 32, lane = threadIdx.x & 31;
    const size_t vecs = C / kWidth;
    Vec* dwWarp = reinterpret_cast<Vec*>(dwShared + warp * C);
    const Vec* wv = reinterpret_cast<const Vec*>(w);
    for (size_t c = lane; c < vecs; c += 32) dwWarp[c] = Vec{};
    const size_t r0 = blockIdx.x * rowsPerBlock;
    const size_t r1 = min(N, r0 + rowsPerBlock);
    for (size_t n = r0 + warp; n < r1; n += warps) {
        const Vec* xr = reinterpret_cast<const Vec*>(x + n * C);
        const G* g = dout + n * C;
        const float r = rstd[n];
        Vec* d = reinterpret_cast<Vec*>(dx + n * C);
        float dot = 0.0f, k = 0.0f;
        const auto update = [&](size_t c, Vec dc, Vec gc, Vec xc) {
            rmsStep(dc, dwWarp[c], gc, xc, wv[c], r, k);
            d[c] = dc;
            if (dx16) storeVec(dx16 + n * C, c, dc);
        };
        if constexpr (kPerLane > 0) {
            // dx too is loaded with g and x, so a row costs one round trip to memory.
            Vec gs[kPerLane], xs[kPerLane], ds[kPerLane];
#pragma unroll
            for (int i = 0; i < kPerLane; ++i) {
                const size_t c = lane + 32 * static_cast<size_t>(i);
                gs[i] = c < vecs ? loadVec<Vec>(g, c) : Vec{};
                xs[i] = c < vecs ? xr[c] : Vec{};
                ds[i] = c < vecs ? d[c] : Vec{};
            }
#pragma unroll
            for (int i = 0; i < kPerLane; ++i) {
                const size_t c = lane + 32 * static_cast<size_t>(i);
                if (c < vecs) dot += rmsDot(gs[i], wv[c], xs[i]);
            }
            k = r * r * r * warpSum(dot) / static_cast<float>(C);
#pragma unroll
            for (int i = 0; i < kPerLane; ++i) {
                const size_t c = lane + 32 * static_cast<size_t>(i);
                if (c < vecs) update(c, ds[i], gs[i], xs[i]);
            }
        } else {
            for (size_t c = lane; c < vecs; c += 32) dot += rmsDot(loadVec<Vec>(g, c), wv[c], xr[c]);
            k = r * r * r * warpSum(dot) / static_cast<float>(C);
            for (size_t c = lane; c < vecs; c += 32) update(c, d[c], loadVec<Vec>(g, c), xr[c]);
        }
    }
    __syncthreads();
    for (size_t c = threadIdx.x; c < C; c += blockDim.x) {
        float s = 0.0f;
        for (size_t k = 0; k < warps; ++k) s += dwShared[k * C + c];
        partial[blockIdx.x * C + c] = s;
    }
}

// dw(C) += Σ over blocks of partial(blocks, C), in a fixed order: a block
// of 8 warps covers 32 columns; warp k adds rows k, k+8, ..., then warp 0
// adds the 8 warp sums in order. Launch: ceil(C/32) blocks of 256 threads.
__global__ void rmsnorm_dw_reduce_kernel(float* __restrict__ dw, const float* __restrict__ partial,
                                         size_t blocks, size_t C) {
    __shared__ float sums[8][32];
    const size_t lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const size_t c = blockIdx.x * 32 + lane;
    float s = 0.0f;
    if (c < C)
        for (size_t b = warp; b < blocks; b += 8) s += partial[b * C + c];
    sums[warp][lane] = s;
    __syncthreads();
    if (warp == 0 && c < C) {
        float total = 0.0f;
        for (int k = 0; k < 8; ++k) total += sums[k][lane];
        dw[c] += total;
    }
}

}  // namespace relora::gpu
