// Flash-style causal attention (forward and backward) on bf16 tensor cores
// (mma.sync m16n8k16, fp32 accumulation). Used in the backend's bf16 mode:
// no (B,H,T,T) probabilities are stored, only the log-sum-exp of every
// score row (B,H,T), in the base-2 domain. q, k, v are read from the
// qkv(N, 3C) rows, fp32 (rounded to bf16 once per tile) or bf16 (an operand
// buffer); P, dO and dS are rounded to bf16 before their products. out is
// fp32 or bf16; the backward kernels read qkv and dO and write dq, dk, dv
// all in fp32 or all in bf16.
//
// Tiles: 64 queries x 64 keys per block, 4 warps, each warp owning 16 rows
// of the block's own tile. Head width D is a template parameter (32 or 64).
// The backward pass is two kernels without atomics (dK/dV per key tile, dQ
// per query tile), so results are bit-reproducible.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"

#include <cuda_bf16.h>
#include <cstdint>

namespace relora::gpu::flash {

constexpr int kTile = 64;
constexpr int kWarps = 4;
constexpr int kThreadsFA = kWarps * 32;
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

// D(16x8) += A(16x16) B(16x8); a: 4 regs, b: 2 regs, d: 4 floats.
__device__ __forceinline__ void mma16816(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// Shared tile of 64 rows x D bf16, padded by 8 elements (16 bytes) per row.
template <int D>
struct Tile {
    static constexpr int kLd = D + 8;
    __nv_bfloat16 v[kTile * kLd];
};
// Transposed shared tile: D rows x 64 columns, padded.
template <int D>
struct TileT {
    static constexpr int kLd = kTile + 8;
    __nv_bfloat16 v[D * kLd];
};

// Load rows [row0, row0+64) (row stride `ld` values, clipped at T: zeros
// beyond) of a (T, D) fp32 or bf16 slice into a bf16 tile, and/or its transpose.
template <int D, bool kNormal, bool kTransposed, typename Src>
__device__ __forceinline__ void load_tile(Tile<D>* tile, TileT<D>* tileT, const Src* __restrict__ src,
                                          size_t ld, int row0, int T) {
    constexpr int kVec = D / 4;  // 4 values per load
    for (int i = threadIdx.x; i < kTile * kVec; i += kThreadsFA) {
        const int r = i / kVec, c = (i % kVec) * 4;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (row0 + r < T) x = loadAs4(src + static_cast<size_t>(row0 + r) * ld + c);
        if (kNormal) {
            uint2 packed = make_uint2(pack_bf16(x.x, x.y), pack_bf16(x.z, x.w));
            *reinterpret_cast<uint2*>(&tile->v[r * Tile<D>::kLd + c]) = packed;
        }
        if (kTransposed) {
            constexpr int L = TileT<D>::kLd;
            tileT->v[(c + 0) * L + r] = __float2bfloat16_rn(x.x);
            tileT->v[(c + 1) * L + r] = __float2bfloat16_rn(x.y);
            tileT->v[(c + 2) * L + r] = __float2bfloat16_rn(x.z);
            tileT->v[(c + 3) * L + r] = __float2bfloat16_rn(x.w);
        }
    }
}

// A fragments (16 rows x D) of rows [16·warp, +16) of a shared tile.
template <int D>
__device__ __forceinline__ void load_a_frags(uint32_t (*a)[4], const Tile<D>& t, int warp, int lane) {
    const int g = lane >> 2, t4 = lane & 3;
    constexpr int L = Tile<D>::kLd;
    const __nv_bfloat16* base = t.v + (warp * 16 + g) * L + 2 * t4;
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc) {
        a[kc][0] = *reinterpret_cast<const uint32_t*>(base + kc * 16);
        a[kc][1] = *reinterpret_cast<const uint32_t*>(base + 8 * L + kc * 16);
        a[kc][2] = *reinterpret_cast<const uint32_t*>(base + kc * 16 + 8);
        a[kc][3] = *reinterpret_cast<const uint32_t*>(base + 8 * L + kc * 16 + 8);
    }
}

// acc(16 x 64) = A(16 x D, fragments) · Xᵀ where X is a (64 x D) shared tile:
// acc[n] covers columns 8n..8n+7 (rows of X).
template <int D>
__device__ __forceinline__ void mma_a_xt(float (*acc)[4], const uint32_t (*a)[4], const Tile<D>& x, int lane) {
    const int g = lane >> 2, t4 = lane & 3;
    constexpr int L = Tile<D>::kLd;
#pragma unroll
    for (int n = 0; n < 8; ++n) {
        acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
        const __nv_bfloat16* row = x.v + (8 * n + g) * L + 2 * t4;
#pragma unroll
        for (int kc = 0; kc < D / 16; ++kc) {
            const uint32_t b0 = *reinterpret_cast<const uint32_t*>(row + kc * 16);
            const uint32_t b1 = *reinterpret_cast<const uint32_t*>(row + kc * 16 + 8);
            mma16816(acc[n], a[kc], b0, b1);
        }
    }
}

// out(16 x D) += P(16 x 64, accumulator layout, rounded to bf16) · Y where
// Y (64 x D) is given transposed: yT (D x 64) shared.
template <int D>
__device__ __forceinline__ void mma_p_y(float (*out)[4], const float (*p)[4], const TileT<D>& yT, int lane) {
    const int g = lane >> 2, t4 = lane & 3;
    constexpr int L = TileT<D>::kLd;
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
        uint32_t a[4];
        a[0] = pack_bf16(p[2 * kc][0], p[2 * kc][1]);
        a[1] = pack_bf16(p[2 * kc][2], p[2 * kc][3]);
        a[2] = pack_bf16(p[2 * kc + 1][0], p[2 * kc + 1][1]);
        a[3] = pack_bf16(p[2 * kc + 1][2], p[2 * kc + 1][3]);
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            const __nv_bfloat16* row = yT.v + (8 * n + g) * L + kc * 16 + 2 * t4;
            const uint32_t b0 = *reinterpret_cast<const uint32_t*>(row);
            const uint32_t b1 = *reinterpret_cast<const uint32_t*>(row + 8);
            mma16816(out[n], a, b0, b1);
        }
    }
}

// ---- forward ---------------------------------------------------------------------
// grid (ceil(T/64), B·H); out(N, C); lse(B·H, T) base-2 log-sum-exp of the scaled scores.
template <int D, typename Q, typename O>
__global__ void __launch_bounds__(kThreadsFA) flash_forward_kernel(O* __restrict__ out, float* __restrict__ lse,
                                                                   const Q* __restrict__ qkv, int T, int H,
                                                                   float scaleLog2) {
    __shared__ Tile<D> sQ, sK;
    __shared__ TileT<D> sVt;
    const int qt = gridDim.x - 1 - blockIdx.x;  // longest tiles first
    const int bh = blockIdx.y, b = bh / H, h = bh % H;
    const int C = H * D;
    const size_t ld = 3 * static_cast<size_t>(C);
    const Q* base = qkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int q0 = qt * kTile;

    load_tile<D, true, false>(&sQ, nullptr, base, ld, q0, T);
    __syncthreads();
    uint32_t qa[D / 16][4];
    load_a_frags<D>(qa, sQ, warp, lane);

    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;

    for (int kt = 0; kt <= qt; ++kt) {
        __syncthreads();  // previous tiles fully read
        load_tile<D, true, false>(&sK, nullptr, base + C, ld, kt * kTile, T);
        load_tile<D, false, true>(nullptr, &sVt, base + 2 * C, ld, kt * kTile, T);
        __syncthreads();
        float s[8][4];
        mma_a_xt<D>(s, qa, sK, lane);
        const bool diag = kt == qt;
        float mx0 = m0, mx1 = m1;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = kt * kTile + 8 * n + 2 * t4 + (e & 1);
                const int row = e < 2 ? row0 : row1;
                float v = s[n][e] * scaleLog2;
                if (diag && key > row) v = -INFINITY;
                s[n][e] = v;
            }
            mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
            mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        const float alpha0 = exp2f(m0 - mx0), alpha1 = exp2f(m1 - mx1);  // m = -inf first: 0
        m0 = mx0;
        m1 = mx1;
        float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            s[n][0] = exp2f(s[n][0] - m0);
            s[n][1] = exp2f(s[n][1] - m0);
            s[n][2] = exp2f(s[n][2] - m1);
            s[n][3] = exp2f(s[n][3] - m1);
            sum0 += s[n][0] + s[n][1];
            sum1 += s[n][2] + s[n][3];
        }
        l0 = l0 * alpha0 + sum0;
        l1 = l1 * alpha1 + sum1;
#pragma unroll
        for (int n = 0; n < D / 8; ++n) {
            o[n][0] *= alpha0;
            o[n][1] *= alpha0;
            o[n][2] *= alpha1;
            o[n][3] *= alpha1;
        }
        mma_p_y<D>(o, s, sVt, lane);
    }
    l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
    l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
    l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
    const float inv0 = 1.f / l0, inv1 = 1.f / l1;
    O* ob = out + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * D;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
        const int col = 8 * n + 2 * t4;
        if (row0 < T) storeAs2(ob + static_cast<size_t>(row0) * C + col, o[n][0] * inv0, o[n][1] * inv0);
        if (row1 < T) storeAs2(ob + static_cast<size_t>(row1) * C + col, o[n][2] * inv1, o[n][3] * inv1);
    }
    if (t4 == 0) {
        float* lb = lse + static_cast<size_t>(bh) * T;
        if (row0 < T) lb[row0] = m0 + log2f(l0);
        if (row1 < T) lb[row1] = m1 + log2f(l1);
    }
}

// ---- backward ----------------------------------------------------------------------
// delta(B·H, T) = Σ_d dO·O per row (one warp per row).
template <typename O, typename DO>
__global__ void flash_delta_kernel(float* __restrict__ delta, const DO* __restrict__ dout,
                                   const O* __restrict__ out, int B, int T, int H, int D) {
    const int warpsPerBlock = blockDim.x / 32, lane = threadIdx.x & 31;
    const size_t rows = static_cast<size_t>(B) * H * T;
    const int C = H * D;
    for (size_t r = static_cast<size_t>(blockIdx.x) * warpsPerBlock + threadIdx.x / 32; r < rows;
         r += static_cast<size_t>(gridDim.x) * warpsPerBlock) {
        const size_t bh = r / T, t = r % T, b = bh / H, h = bh % H;
        const size_t off = (b * T + t) * C + h * D;
        float s = 0.f;
        for (int d = lane; d < D; d += 32) s += loadAsFloat(dout + off + d) * loadAsFloat(out + off + d);
        s = warpSum(s);
        if (lane == 0) delta[r] = s;
    }
}

// Rows of lse/delta for a 64-row tile into shared arrays (+inf / 0 past T).
__device__ __forceinline__ void load_row_stats(float* sL, float* sD, const float* lse, const float* delta, int row0,
                                               int T) {
    for (int i = threadIdx.x; i < kTile; i += kThreadsFA) {
        const bool ok = row0 + i < T;
        sL[i] = ok ? lse[row0 + i] : INFINITY;
        sD[i] = ok ? delta[row0 + i] : 0.f;
    }
}

// Store acc(16 x D) rows [16·warp, +16) of tile row0, scaled, into dst (row stride ld).
template <int D, typename G>
__device__ __forceinline__ void store_rows(G* dst, size_t ld, const float (*acc)[4], float scale, int row0, int T,
                                           int warp, int lane) {
    const int g = lane >> 2, t4 = lane & 3;
    const int r0 = row0 + warp * 16 + g, r1 = r0 + 8;
#pragma unroll
    for (int n = 0; n < D / 8; ++n) {
        const int col = 8 * n + 2 * t4;
        if (r0 < T) storeAs2(dst + static_cast<size_t>(r0) * ld + col, acc[n][0] * scale, acc[n][1] * scale);
        if (r1 < T) storeAs2(dst + static_cast<size_t>(r1) * ld + col, acc[n][2] * scale, acc[n][3] * scale);
    }
}

// dK, dV for one key tile (grid: ceil(T/64), B·H); Q: fp32 or bf16 tensors. Transposed formulation:
// the warp's rows are keys, columns are queries.
//   Sᵀ = K Qᵀ, Pᵀ = exp2(Sᵀ·scaleLog2 − lse[q]), dV += Pᵀ dO,
//   dPᵀ = V dOᵀ, dSᵀ = Pᵀ ⊙ (dPᵀ − delta[q]), dK += dSᵀ Q (· scale at the end).
template <int D, typename Q>
__global__ void __launch_bounds__(kThreadsFA) flash_backward_dkdv_kernel(
    Q* __restrict__ dqkv, const Q* __restrict__ dout, const Q* __restrict__ qkv,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int H, float scale, float scaleLog2) {
    __shared__ Tile<D> sQ, sdO;
    __shared__ TileT<D> sQt, sdOt;
    __shared__ float sL[kTile], sDl[kTile];
    const int kt = blockIdx.x;
    const int bh = blockIdx.y, b = bh / H, h = bh % H;
    const int C = H * D;
    const size_t ld = 3 * static_cast<size_t>(C);
    const Q* base = qkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D;
    const Q* dob = dout + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * D;
    const float* lb = lse + static_cast<size_t>(bh) * T;
    const float* db = delta + static_cast<size_t>(bh) * T;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int k0 = kt * kTile;
    const int key0 = k0 + warp * 16 + g, key1 = key0 + 8;

    uint32_t ka[D / 16][4], va[D / 16][4];
    // K and V rows of this warp as A fragments (staged through sQ / sdO).
    load_tile<D, true, false>(&sQ, nullptr, base + C, ld, k0, T);
    load_tile<D, true, false>(&sdO, nullptr, base + 2 * C, ld, k0, T);
    __syncthreads();
    load_a_frags<D>(ka, sQ, warp, lane);
    load_a_frags<D>(va, sdO, warp, lane);

    float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.f;

    const int tiles = (T + kTile - 1) / kTile;
    for (int qt = kt; qt < tiles; ++qt) {
        const int q0 = qt * kTile;
        __syncthreads();
        load_tile<D, true, true>(&sQ, &sQt, base, ld, q0, T);
        load_tile<D, true, true>(&sdO, &sdOt, dob, C, q0, T);
        load_row_stats(sL, sDl, lb, db, q0, T);
        __syncthreads();
        float p[8][4];
        mma_a_xt<D>(p, ka, sQ, lane);  // Sᵀ (keys x queries)
        const bool diag = qt == kt;
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int qi = 8 * n + 2 * t4 + (e & 1);
                const int key = e < 2 ? key0 : key1;
                float v = exp2f(p[n][e] * scaleLog2 - sL[qi]);
                if (diag && key > q0 + qi) v = 0.f;
                p[n][e] = v;
            }
        mma_p_y<D>(dv, p, sdOt, lane);  // dV += Pᵀ dO
        float dp[8][4];
        mma_a_xt<D>(dp, va, sdO, lane);  // dPᵀ = V dOᵀ
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int qi = 8 * n + 2 * t4 + (e & 1);
                dp[n][e] = p[n][e] * (dp[n][e] - sDl[qi]);
            }
        mma_p_y<D>(dk, dp, sQt, lane);  // dK += dSᵀ Q
    }
    Q* dkb = dqkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D + C;
    store_rows<D>(dkb, ld, dk, scale, k0, T, warp, lane);
    store_rows<D>(dkb + C, ld, dv, 1.0f, k0, T, warp, lane);
}

// dQ for one query tile (grid: ceil(T/64), B·H):
//   S = Q Kᵀ, P = exp2(S·scaleLog2 − lse), dP = dO Vᵀ, dS = P ⊙ (dP − delta),
//   dQ += dS K (· scale at the end).
template <int D, typename Q>
__global__ void __launch_bounds__(kThreadsFA) flash_backward_dq_kernel(
    Q* __restrict__ dqkv, const Q* __restrict__ dout, const Q* __restrict__ qkv,
    const float* __restrict__ lse, const float* __restrict__ delta, int T, int H, float scale, float scaleLog2) {
    __shared__ Tile<D> sK, sV;
    __shared__ TileT<D> sKt;
    __shared__ float sL[kTile], sDl[kTile];
    const int qt = gridDim.x - 1 - blockIdx.x;
    const int bh = blockIdx.y, b = bh / H, h = bh % H;
    const int C = H * D;
    const size_t ld = 3 * static_cast<size_t>(C);
    const Q* base = qkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D;
    const Q* dob = dout + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * D;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int q0 = qt * kTile;

    uint32_t qa[D / 16][4], doa[D / 16][4];
    load_tile<D, true, false>(&sK, nullptr, base, ld, q0, T);
    load_tile<D, true, false>(&sV, nullptr, dob, C, q0, T);
    load_row_stats(sL, sDl, lse + static_cast<size_t>(bh) * T, delta + static_cast<size_t>(bh) * T, q0, T);
    __syncthreads();
    load_a_frags<D>(qa, sK, warp, lane);
    load_a_frags<D>(doa, sV, warp, lane);
    const int r0 = warp * 16 + g, r1 = r0 + 8;
    const float lse0 = sL[r0], lse1 = sL[r1], dl0 = sDl[r0], dl1 = sDl[r1];

    float dq[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

    for (int kt = 0; kt <= qt; ++kt) {
        const int k0 = kt * kTile;
        __syncthreads();
        load_tile<D, true, true>(&sK, &sKt, base + C, ld, k0, T);
        load_tile<D, true, false>(&sV, nullptr, base + 2 * C, ld, k0, T);
        __syncthreads();
        float p[8][4];
        mma_a_xt<D>(p, qa, sK, lane);
        const bool diag = kt == qt;
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int key = k0 + 8 * n + 2 * t4 + (e & 1);
                const int row = q0 + (e < 2 ? r0 : r1);
                float v = exp2f(p[n][e] * scaleLog2 - (e < 2 ? lse0 : lse1));
                if (diag && key > row) v = 0.f;
                p[n][e] = v;
            }
        float dp[8][4];
        mma_a_xt<D>(dp, doa, sV, lane);  // dP = dO Vᵀ
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) dp[n][e] = p[n][e] * (dp[n][e] - (e < 2 ? dl0 : dl1));
        mma_p_y<D>(dq, dp, sKt, lane);  // dQ += dS K
    }
    Q* dqb = dqkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D;
    store_rows<D>(dqb, ld, dq, scale, q0, T, warp, lane);
}

}  // namespace relora::gpu::flash
