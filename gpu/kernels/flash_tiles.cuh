// Building blocks of the flash attention kernels (flash_attention.cuh): the
// order their blocks start in (flash_grid), 64-row bf16 tiles in shared
// memory, filled asynchronously by cp.async from bf16 sources (the model's
// operand buffers) or by converting loads from fp32 ones, and the m16n8k16
// bf16 tensor-core products on them. The products fetch their B operands
// with ldmatrix: plain where the tile's rows are the product's n dimension
// (S = Q·Kᵀ), transposed (.trans) where its rows are the k dimension
// (O = P·V), so no transposed copy of a tile is ever stored.
#pragma once

#include "gpu/kernels/async_copy.cuh"
#include "gpu/kernels/storage.cuh"

#include <cuda_bf16.h>
#include <cstddef>
#include <cstdint>

namespace relora::gpu::flash {

constexpr int kTile = 64;
constexpr int kWarps = 4;
constexpr int kThreadsFA = kWarps * 32;

// Launch order. A block's loop runs over as many tiles as its own tile's
// position allows (causal: 1 to 8 at T = 512, up to 64 at 4096), and blocks
// start in grid order (x, then y, then z). The grid (G, tiles, B·H / G)
// starts the longest loops of G heads first, then the next rank of the same
// heads, and so on, before the next G heads: the long loops do not pile up
// in the last wave, and the G heads' q|k|v rows stay in L2 while their
// tiles run. G is the largest divisor of B·H up to 32 (bench/RESULTS.md:
// the best or near it from T = 512 to 4096; all heads at once overflow L2).
struct BlockTile {
    int rank;  // 0: the tile with the longest loop
    int bh;    // batch · heads + head
};
__device__ __forceinline__ BlockTile block_tile() {
    return {static_cast<int>(blockIdx.y), static_cast<int>(blockIdx.z * gridDim.x + blockIdx.x)};
}
inline dim3 flash_grid(size_t B, size_t H, size_t T) {
    const size_t heads = B * H;
    size_t group = 32;
    while (heads % group != 0) --group;
    return dim3(static_cast<unsigned>(group), static_cast<unsigned>((T + kTile - 1) / kTile),
                static_cast<unsigned>(heads / group));
}

// Shared tile of 64 rows x D bf16. The 8-element (16-byte) padding per row
// puts the 8 row addresses of an ldmatrix on distinct banks and keeps every
// row 16-byte aligned for cp.async.
template <int D>
struct Tile {
    static constexpr int kLd = D + 8;
    __nv_bfloat16 v[kTile * kLd];
};

// Starts loading rows [row0, row0+64) of a (T, D) bf16 slice (row stride ld,
// 16-byte aligned rows) into t, zeros past T; complete after cp_async_wait.
// Every thread copies the same column chunk of kTile / kStep rows a fixed
// kStep apart, so all the index arithmetic but one row offset is loop-invariant.
template <int D>
__device__ __forceinline__ void load_tile(Tile<D>& t, const __nv_bfloat16* __restrict__ src, size_t ld, int row0,
                                          int T) {
    constexpr int kChunks = D / 8, kStep = kThreadsFA / kChunks;  // 16-byte chunks a row, rows a pass
    const int r0 = threadIdx.x / kChunks, c = (threadIdx.x % kChunks) * 8;
    const __nv_bfloat16* p = src + static_cast<size_t>(row0 + r0) * ld + c;
#pragma unroll
    for (int i = 0; i < kTile / kStep; ++i) {
        const int r = r0 + i * kStep;
        const bool ok = row0 + r < T;
        cp_async<16>(&t.v[r * Tile<D>::kLd + c], ok ? p + static_cast<size_t>(i * kStep) * ld : src, ok);
    }
}
// The same from an fp32 slice, rounded to bf16: synchronous, so it needs no
// cp_async_wait, only the __syncthreads every reader passes anyway.
template <int D>
__device__ __forceinline__ void load_tile(Tile<D>& t, const float* __restrict__ src, size_t ld, int row0, int T) {
    constexpr int kVec = D / 4, kStep = kThreadsFA / kVec;
    const int r0 = threadIdx.x / kVec, c = (threadIdx.x % kVec) * 4;
#pragma unroll
    for (int i = 0; i < kTile / kStep; ++i) {
        const int r = r0 + i * kStep;
        float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
        if (row0 + r < T) x = loadAs4(src + static_cast<size_t>(row0 + r) * ld + c);
        *reinterpret_cast<uint2*>(&t.v[r * Tile<D>::kLd + c]) = packBf16x4(x);
    }
}

// Starts loading 64 per-row values (log-sum-exp or delta) from row0 (zeros
// past T: such rows meet only zero-filled q or dO rows, so they add nothing).
__device__ __forceinline__ void load_row_values(float* s, const float* __restrict__ src, int row0, int T) {
    for (int i = threadIdx.x; i < kTile; i += kThreadsFA) {
        const bool ok = row0 + i < T;
        cp_async<4>(&s[i], src + (ok ? row0 + i : 0), ok);
    }
}

// 2^x in one MUFU instruction (exp2f adds a denormal range fix-up; the
// probabilities it would rescue are below bf16's resolution of a row's sum).
__device__ __forceinline__ float exp2_approx(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
}

// Four 8x8 bf16 matrices; lanes 8i..8i+7 give the row addresses of matrix i.
__device__ __forceinline__ void ldmatrix_x4(uint32_t* r, const __nv_bfloat16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smemAddress(p)));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t* r, const __nv_bfloat16* p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smemAddress(p)));
}

// D(16x8) += A(16x16) B(16x8); a: 4 regs, b: 2 regs, d: 4 floats.
__device__ __forceinline__ void mma16816(float* d, const uint32_t* a, uint32_t b0, uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// A fragments (16 rows x D) of rows [16·warp, +16) of a tile.
template <int D>
__device__ __forceinline__ void load_a_frags(uint32_t (*a)[4], const Tile<D>& t, int warp, int lane) {
    const int r = lane & 7, m = lane >> 3;  // matrices: rows +0/+8 (m & 1), columns +0/+8 (m >> 1)
#pragma unroll
    for (int kc = 0; kc < D / 16; ++kc)
        ldmatrix_x4(a[kc], t.v + (warp * 16 + r + 8 * (m & 1)) * Tile<D>::kLd + kc * 16 + 8 * (m >> 1));
}

// acc(16 x 64) = A(16 x D, fragments) · Xᵀ, X a (64 x D) tile: acc[n] holds
// columns 8n..8n+7 (rows of X). One ldmatrix gives B for two k-steps.
template <int D>
__device__ __forceinline__ void mma_a_xt(float (*acc)[4], const uint32_t (*a)[4], const Tile<D>& x, int lane) {
    const int r = lane & 7, m = lane >> 3;  // matrix m: columns 8m..8m+7 of a 32-wide k block
#pragma unroll
    for (int n = 0; n < 8; ++n) {
        acc[n][0] = acc[n][1] = acc[n][2] = acc[n][3] = 0.f;
#pragma unroll
        for (int j = 0; j < D / 32; ++j) {
            uint32_t b[4];
            ldmatrix_x4(b, x.v + (8 * n + r) * Tile<D>::kLd + 32 * j + 8 * m);
            mma16816(acc[n], a[2 * j], b[0], b[1]);
            mma16816(acc[n], a[2 * j + 1], b[2], b[3]);
        }
    }
}

// out(16 x D) += P(16 x 64, accumulator layout, rounded to bf16) · Y, Y a
// (64 x D) tile read transposed. One ldmatrix gives B for two 8-column blocks.
template <int D>
__device__ __forceinline__ void mma_p_y(float (*out)[4], const float (*p)[4], const Tile<D>& y, int lane) {
    const int r = lane & 7, m = lane >> 3;  // matrix m: rows +0/+8 (m & 1), columns +0/+8 (m >> 1)
#pragma unroll
    for (int kc = 0; kc < 4; ++kc) {
        uint32_t a[4];
        a[0] = pack_bf16(p[2 * kc][0], p[2 * kc][1]);
        a[1] = pack_bf16(p[2 * kc][2], p[2 * kc][3]);
        a[2] = pack_bf16(p[2 * kc + 1][0], p[2 * kc + 1][1]);
        a[3] = pack_bf16(p[2 * kc + 1][2], p[2 * kc + 1][3]);
#pragma unroll
        for (int j = 0; j < D / 16; ++j) {
            uint32_t b[4];
            ldmatrix_x4_trans(b, y.v + (16 * kc + r + 8 * (m & 1)) * Tile<D>::kLd + 16 * j + 8 * (m >> 1));
            mma16816(out[2 * j], a, b[0], b[1]);
            mma16816(out[2 * j + 1], a, b[2], b[3]);
        }
    }
}

}  // namespace relora::gpu::flash
