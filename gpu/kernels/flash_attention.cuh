// Flash-style causal attention (forward and backward) on bf16 tensor cores
// (mma.sync m16n8k16, fp32 accumulation). q and k arrive rotated by the
// rotary embedding; the backward kernels rotate the gradients of q and k back
// as they store them, so dqkv is the projection output's gradient (one pass
// over dq|dk fewer). Used in the backend's bf16 mode:
// no (B,H,T,T) probabilities are stored, only the log-sum-exp of every
// score row (B,H,T), in the base-2 domain. q, k, v are read from the
// qkv(N, 3C) rows, fp32 (rounded to bf16 once per tile) or bf16 (an operand
// buffer, copied by cp.async); P, dO and dS are rounded to bf16 before their
// products. The forward writes out in fp32 or bf16; the backward kernels
// read qkv, out and dO and write dq, dk, dv all in fp32 or all in bf16.
//
// Tiles: 64 queries x 64 keys per block, 4 warps, each warp owning 16 rows
// of the block's own tile. Head width D is a template parameter (32 or 64).
// The tiles streamed along the loop are double-buffered: the next pair is in
// flight while the current one is multiplied. The backward pass is two
// kernels without atomics, so results are bit-reproducible: dQ per query
// tile, which also finds each row's delta = Σ dO·O from the dO tile it
// loads anyway, then dK/dV per key tile, which reads those deltas.
#pragma once

#include "gpu/kernels/common.cuh"
#include "gpu/kernels/flash_tiles.cuh"
#include "gpu/kernels/rope.cuh"
#include "gpu/kernels/storage.cuh"

namespace relora::gpu::flash {

constexpr float kLog2e = 1.4426950408889634f;

// ---- forward ---------------------------------------------------------------------
// grid flash_grid(B, H, T); out(N, C); lse(B·H, T) base-2 log-sum-exp of the scaled scores.
template <int D, typename Q, typename O>
__global__ void __launch_bounds__(kThreadsFA, 4) flash_forward_kernel(O* __restrict__ out, float* __restrict__ lse,
                                                                   const Q* __restrict__ qkv, int T, int H,
                                                                   float scaleLog2) {
    __shared__ Tile<D> sK[2], sV[2];
    const BlockTile tile = block_tile();
    const int qt = gridDim.y - 1 - tile.rank;
    const int bh = tile.bh, b = bh / H, h = bh % H;
    const int C = H * D;
    const size_t ld = 3 * static_cast<size_t>(C);
    const Q* base = qkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int q0 = qt * kTile;

    // The queries are staged through the second stage.
    load_tile<D>(sK[1], base, ld, q0, T);
    load_tile<D>(sK[0], base + C, ld, 0, T);
    load_tile<D>(sV[0], base + 2 * C, ld, 0, T);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    uint32_t qa[D / 16][4];
    load_a_frags<D>(qa, sK[1], warp, lane);
    __syncthreads();  // stage 1 is free again

    // m: running maximum of the row's scaled scores (base 2), l: the sum of exp2(score - m).
    float o[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.f;
    float m0 = -INFINITY, m1 = -INFINITY, l0 = 0.f, l1 = 0.f;
    const int row0 = q0 + warp * 16 + g, row1 = row0 + 8;

    for (int kt = 0; kt <= qt; ++kt) {
        const int stage = kt & 1;
        if (kt < qt) {
            load_tile<D>(sK[stage ^ 1], base + C, ld, (kt + 1) * kTile, T);
            load_tile<D>(sV[stage ^ 1], base + 2 * C, ld, (kt + 1) * kTile, T);
        }
        cp_async_commit();
        cp_async_wait<1>();  // everything but the pair just started
        __syncthreads();
        float s[8][4];
        mma_a_xt<D>(s, qa, sK[stage], lane);
        if (kt == qt) {  // the diagonal tile: mask keys after the row
#pragma unroll
            for (int n = 0; n < 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    if (kt * kTile + 8 * n + 2 * t4 + (e & 1) > (e < 2 ? row0 : row1)) s[n][e] = -INFINITY;
        }
        float mx0 = -INFINITY, mx1 = -INFINITY;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            mx0 = fmaxf(mx0, fmaxf(s[n][0], s[n][1]));
            mx1 = fmaxf(mx1, fmaxf(s[n][2], s[n][3]));
        }
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 1));
        mx0 = fmaxf(mx0, __shfl_xor_sync(0xffffffffu, mx0, 2));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 1));
        mx1 = fmaxf(mx1, __shfl_xor_sync(0xffffffffu, mx1, 2));
        // The scale rides on the exponent's FMA. Key 0 comes first and precedes
        // every row, so m is finite from the first tile on (alpha is 0 there).
        const float n0 = fmaxf(m0, mx0 * scaleLog2), n1 = fmaxf(m1, mx1 * scaleLog2);
        const float alpha0 = exp2_approx(m0 - n0), alpha1 = exp2_approx(m1 - n1);
        m0 = n0;
        m1 = n1;
        float sum0 = 0.f, sum1 = 0.f;
#pragma unroll
        for (int n = 0; n < 8; ++n) {
            s[n][0] = exp2_approx(fmaf(s[n][0], scaleLog2, -m0));
            s[n][1] = exp2_approx(fmaf(s[n][1], scaleLog2, -m0));
            s[n][2] = exp2_approx(fmaf(s[n][2], scaleLog2, -m1));
            s[n][3] = exp2_approx(fmaf(s[n][3], scaleLog2, -m1));
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
        mma_p_y<D>(o, s, sV[stage], lane);
        __syncthreads();  // the next iteration loads into this stage
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
// Store acc(16 x D) rows [16·warp, +16) of tile row0, scaled, into dst (row
// stride ld). kRotated: a gradient of q or k, first rotated back by the
// transposed rotary embedding of its row's position (cosT, sinT (T, D/2));
// column c pairs with c + D/2, which the same thread holds in acc[n + D/16].
template <int D, bool kRotated, typename G>
__device__ __forceinline__ void store_rows(G* dst, size_t ld, const float (*acc)[4], float scale,
                                           const float* __restrict__ cosT, const float* __restrict__ sinT,
                                           int row0, int T, int warp, int lane) {
    constexpr int kHalf = D / 2, kPair = D / 16;
    const int g = lane >> 2, t4 = lane & 3;
#pragma unroll
    for (int half = 0; half < 2; ++half) {  // rows g (acc[n][0..1]) and g + 8 (acc[n][2..3])
        const int r = row0 + warp * 16 + g + 8 * half;
        if (r >= T) continue;
        G* row = dst + static_cast<size_t>(r) * ld;
#pragma unroll
        for (int n = 0; n < kPair; ++n) {
            const int col = 8 * n + 2 * t4;
            float a0 = acc[n][2 * half] * scale, a1 = acc[n][2 * half + 1] * scale;
            float b0 = acc[n + kPair][2 * half] * scale, b1 = acc[n + kPair][2 * half + 1] * scale;
            if constexpr (kRotated) {
                const size_t at = static_cast<size_t>(r) * kHalf + col;
                const float2 c = *reinterpret_cast<const float2*>(cosT + at);
                const float2 sn = *reinterpret_cast<const float2*>(sinT + at);
                rotatePair(a0, b0, c.x, -sn.x);
                rotatePair(a1, b1, c.y, -sn.y);
            }
            storeAs2(row + col, a0, a1);
            storeAs2(row + col + kHalf, b0, b1);
        }
    }
}

// dK, dV for one key tile (grid flash_grid(B, H, T)); Q: fp32 or bf16 tensors. Transposed formulation:
// the warp's rows are keys, columns are queries.
//   Sᵀ = K Qᵀ, Pᵀ = exp2(Sᵀ·scaleLog2 − lse[q]), dV += Pᵀ dO,
//   dPᵀ = V dOᵀ, dSᵀ = Pᵀ ⊙ (dPᵀ − delta[q]), dK += dSᵀ Q (· scale at the end).
template <int D, typename Q>
__global__ void __launch_bounds__(kThreadsFA, 3) flash_backward_dkdv_kernel(
    Q* __restrict__ dqkv, const Q* __restrict__ dout, const Q* __restrict__ qkv,
    const float* __restrict__ lse, const float* __restrict__ delta, const float* __restrict__ cosT,
    const float* __restrict__ sinT, int T, int H, float scale, float scaleLog2) {
    __shared__ Tile<D> sQ[2], sdO[2];
    __shared__ float sL[2][kTile], sDl[2][kTile];
    const BlockTile tile = block_tile();
    const int kt = tile.rank;  // the loop runs over the tiles from kt on
    const int bh = tile.bh, b = bh / H, h = bh % H;
    const int C = H * D;
    const size_t ld = 3 * static_cast<size_t>(C);
    const Q* base = qkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D;
    const Q* dob = dout + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * D;
    const float* lb = lse + static_cast<size_t>(bh) * T;
    const float* db = delta + static_cast<size_t>(bh) * T;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, t4 = lane & 3;
    const int k0 = kt * kTile;
    const int key0 = k0 + warp * 16 + g, key1 = key0 + 8;
    const int tiles = gridDim.y;

    // K and V rows of this warp as A fragments, staged through the second stage.
    uint32_t ka[D / 16][4], va[D / 16][4];
    load_tile<D>(sQ[1], base + C, ld, k0, T);
    load_tile<D>(sdO[1], base + 2 * C, ld, k0, T);
    cp_async_commit();
    auto loadQueryTile = [&](int stage, int qt) {
        load_tile<D>(sQ[stage], base, ld, qt * kTile, T);
        load_tile<D>(sdO[stage], dob, C, qt * kTile, T);
        load_row_values(sL[stage], lb, qt * kTile, T);
        load_row_values(sDl[stage], db, qt * kTile, T);
    };
    loadQueryTile(0, kt);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    load_a_frags<D>(ka, sQ[1], warp, lane);
    load_a_frags<D>(va, sdO[1], warp, lane);
    __syncthreads();  // stage 1 is free again

    float dk[D / 8][4], dv[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n)
#pragma unroll
        for (int e = 0; e < 4; ++e) dk[n][e] = dv[n][e] = 0.f;

    for (int qt = kt; qt < tiles; ++qt) {
        const int stage = (qt - kt) & 1, q0 = qt * kTile;
        if (qt + 1 < tiles) loadQueryTile(stage ^ 1, qt + 1);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        const Tile<D>& q = sQ[stage];
        const Tile<D>& dO = sdO[stage];
        const float* rowL = sL[stage];
        const float* rowD = sDl[stage];
        float p[8][4];
        mma_a_xt<D>(p, ka, q, lane);  // Sᵀ (keys x queries)
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e)
                p[n][e] = exp2_approx(fmaf(p[n][e], scaleLog2, -rowL[8 * n + 2 * t4 + (e & 1)]));
        if (qt == kt) {  // the diagonal tile: queries before the key see nothing of it
#pragma unroll
            for (int n = 0; n < 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    if ((e < 2 ? key0 : key1) > q0 + 8 * n + 2 * t4 + (e & 1)) p[n][e] = 0.f;
        }
        mma_p_y<D>(dv, p, dO, lane);  // dV += Pᵀ dO
        float dp[8][4];
        mma_a_xt<D>(dp, va, dO, lane);  // dPᵀ = V dOᵀ
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int qi = 8 * n + 2 * t4 + (e & 1);
                dp[n][e] = p[n][e] * (dp[n][e] - rowD[qi]);
            }
        mma_p_y<D>(dk, dp, q, lane);  // dK += dSᵀ Q
        __syncthreads();  // the next iteration loads into this stage
    }
    Q* dkb = dqkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D + C;
    store_rows<D, true>(dkb, ld, dk, scale, cosT, sinT, k0, T, warp, lane);
    store_rows<D, false>(dkb + C, ld, dv, 1.0f, cosT, sinT, k0, T, warp, lane);
}

// The dot product of rows r of this block's dO tile (in shared memory, so
// rounded to bf16 where dO is fp32, as the products see it) and of O (rows
// of C values, those from row0 on), for the thread's rows r0 and r1: each of
// a row's four lanes (t4) adds D/4 consecutive columns. Zero past T.
template <int D, typename Q>
__device__ __forceinline__ float2 row_delta(const Tile<D>& dO, const Q* __restrict__ o, int C, int row0, int r0,
                                            int r1, int T, int t4) {
    constexpr int kCols = D / 4;
    float d[2] = {0.f, 0.f};
    const int rows[2] = {r0, r1};
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        if (row0 + rows[k] >= T) continue;
        const Q* orow = o + static_cast<size_t>(row0 + rows[k]) * C + t4 * kCols;
        const __nv_bfloat16* drow = dO.v + rows[k] * Tile<D>::kLd + t4 * kCols;
#pragma unroll
        for (int c = 0; c < kCols; c += 4) {
            const float4 x = loadAs4(orow + c), y = loadAs4(drow + c);
            d[k] += x.x * y.x + x.y * y.y + x.z * y.z + x.w * y.w;
        }
    }
#pragma unroll
    for (int k = 0; k < 2; ++k) {
        d[k] += __shfl_xor_sync(0xffffffffu, d[k], 1);
        d[k] += __shfl_xor_sync(0xffffffffu, d[k], 2);
    }
    return make_float2(d[0], d[1]);
}

// dQ for one query tile (grid flash_grid(B, H, T)):
//   delta = Σ_d dO·O per row (written out for the dK/dV kernel, which runs after),
//   S = Q Kᵀ, P = exp2(S·scaleLog2 − lse), dP = dO Vᵀ, dS = P ⊙ (dP − delta),
//   dQ += dS K (· scale at the end). out(N, C) is the forward's output O.
template <int D, typename Q>
__global__ void __launch_bounds__(kThreadsFA, 3) flash_backward_dq_kernel(
    Q* __restrict__ dqkv, float* __restrict__ delta, const Q* __restrict__ dout, const Q* __restrict__ out,
    const Q* __restrict__ qkv, const float* __restrict__ lse, const float* __restrict__ cosT,
    const float* __restrict__ sinT, int T, int H, float scale, float scaleLog2) {
    __shared__ Tile<D> sK[2], sV[2];
    __shared__ float sL[kTile];
    const BlockTile tile = block_tile();
    const int qt = gridDim.y - 1 - tile.rank;
    const int bh = tile.bh, b = bh / H, h = bh % H;
    const int C = H * D;
    const size_t ld = 3 * static_cast<size_t>(C);
    const Q* base = qkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D;
    const Q* dob = dout + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * D;
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2;
    const int t4 = lane & 3;
    const int q0 = qt * kTile;

    // Q and dO rows of this warp as A fragments, staged through the second stage.
    uint32_t qa[D / 16][4], doa[D / 16][4];
    load_tile<D>(sK[1], base, ld, q0, T);
    load_tile<D>(sV[1], dob, C, q0, T);
    load_row_values(sL, lse + static_cast<size_t>(bh) * T, q0, T);
    cp_async_commit();
    auto loadKeyTile = [&](int stage, int kt) {
        load_tile<D>(sK[stage], base + C, ld, kt * kTile, T);
        load_tile<D>(sV[stage], base + 2 * C, ld, kt * kTile, T);
    };
    loadKeyTile(0, 0);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    load_a_frags<D>(qa, sK[1], warp, lane);
    load_a_frags<D>(doa, sV[1], warp, lane);
    const int r0 = warp * 16 + g, r1 = r0 + 8;
    const float lse0 = sL[r0], lse1 = sL[r1];
    const Q* ob = out + static_cast<size_t>(b) * T * C + static_cast<size_t>(h) * D;
    const float2 dl = row_delta<D>(sV[1], ob, C, q0, r0, r1, T, t4);
    const float dl0 = dl.x, dl1 = dl.y;
    if (t4 == 0) {
        float* db = delta + static_cast<size_t>(bh) * T;
        if (q0 + r0 < T) db[q0 + r0] = dl0;
        if (q0 + r1 < T) db[q0 + r1] = dl1;
    }
    __syncthreads();  // stage 1 is free again

    float dq[D / 8][4];
#pragma unroll
    for (int n = 0; n < D / 8; ++n) dq[n][0] = dq[n][1] = dq[n][2] = dq[n][3] = 0.f;

    for (int kt = 0; kt <= qt; ++kt) {
        const int stage = kt & 1, k0 = kt * kTile;
        if (kt < qt) loadKeyTile(stage ^ 1, kt + 1);
        cp_async_commit();
        cp_async_wait<1>();
        __syncthreads();
        float p[8][4];
        mma_a_xt<D>(p, qa, sK[stage], lane);
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) p[n][e] = exp2_approx(fmaf(p[n][e], scaleLog2, -(e < 2 ? lse0 : lse1)));
        if (kt == qt) {  // the diagonal tile: keys after the row are masked
#pragma unroll
            for (int n = 0; n < 8; ++n)
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    if (k0 + 8 * n + 2 * t4 + (e & 1) > q0 + (e < 2 ? r0 : r1)) p[n][e] = 0.f;
        }
        float dp[8][4];
        mma_a_xt<D>(dp, doa, sV[stage], lane);  // dP = dO Vᵀ
#pragma unroll
        for (int n = 0; n < 8; ++n)
#pragma unroll
            for (int e = 0; e < 4; ++e) dp[n][e] = p[n][e] * (dp[n][e] - (e < 2 ? dl0 : dl1));
        mma_p_y<D>(dq, dp, sK[stage], lane);  // dQ += dS K
        __syncthreads();  // the next iteration loads into this stage
    }
    Q* dqb = dqkv + static_cast<size_t>(b) * T * ld + static_cast<size_t>(h) * D;
    store_rows<D, true>(dqb, ld, dq, scale, cosT, sinT, q0, T, warp, lane);
}

}  // namespace relora::gpu::flash
