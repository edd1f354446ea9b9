// LoRA's fold in one pass (Backend::foldLowRank): for each adapter's rows of
// a group's effective weight, target = bf16(base + s·B·A), with the product
// of the factors' bf16 copies on tensor cores (fp32 accumulation). The frozen
// fp32 weight is read once and the bf16 target written once; narrowing the
// weight into the target first and adding a cuBLAS product onto it read and
// wrote the target once more, and rounded twice.
#pragma once

#include "gpu/kernels/async_copy.cuh"
#include "gpu/kernels/common.cuh"
#include "gpu/kernels/storage.cuh"
#include "gpu/kernels/tensor_chunks.cuh"

#include <cuda_bf16.h>
#include <mma.h>

namespace relora::gpu {

// One adapter's rows of a fold.
struct FoldSegment {
    __nv_bfloat16* target;   // (rows, cols), row stride cols
    const float* base;       // (rows, cols), row stride cols
    const __nv_bfloat16* B;  // (rows, rank), packed
    const __nv_bfloat16* A;  // (rank, cols), row stride cols
    int rows, cols, rank;
    float scale;
};

// The kernel's geometry. A block's tile of the target is 128 × 128, each
// of its 8 warps computes 64 × 32 of it (4 × 2 wmma accumulators). Of the
// tiles and warp tiles timed (128 or 64 rows by 128 or 64 columns, warps of
// 64 or 32 rows), this was fastest: 245 µs for the 130m weights on the H100,
// where narrowing them alone takes 181 µs.
struct Fold {
    static constexpr int kRows = 128, kCols = 128, kWarpRows = 64;
    static constexpr int kWarpCols = kCols / 32, kThreads = kRows / kWarpRows * kWarpCols * 32;
    static constexpr int kFragments = kWarpRows / 16;
    static constexpr int kK = 32;                // the slice of the rank in shared memory at a time
    static constexpr int kBPitch = kK + 8;       // bf16 row pitches: the pads spread the rows over the banks
    static constexpr int kAPitch = kCols + 8;    // (and keep 16-row steps 32-byte aligned, as wmma needs)
    // fp32, a warp's 16 × 32 accumulators on their way out: rows 8 banks
    // apart, so that a quarter warp's stores of a row pair do not collide
    static constexpr int kStagePitch = 32 + 8;
    static constexpr int kBaseBytes = kRows * kCols * 4;
    static constexpr int kSliceBytes = (kRows * kBPitch + kK * kAPitch) * 2;  // B's and A's slices
    // Dynamic shared memory: the tile of the base, two slices of the factors
    // (the next loads while the tensor cores take this one).
    static constexpr int kSharedBytes = kBaseBytes + 2 * kSliceBytes;
    static_assert(kThreads / 32 * 16 * kStagePitch * 4 <= 2 * kSliceBytes, "the staging fits the slices");
};

__host__ __device__ inline long long foldTiles(int rows, int cols) {
    return static_cast<long long>((rows + Fold::kRows - 1) / Fold::kRows) * ((cols + Fold::kCols - 1) / Fold::kCols);
}

// dst(8) = src(8) where the slice holds them (`valid` of them), zeros
// beyond: one cp.async where `vectors` (valid then 0 or at least 8).
__device__ inline void foldLoadEight(__nv_bfloat16* __restrict__ dst, const __nv_bfloat16* __restrict__ src,
                                     int valid, bool vectors) {
    if (vectors) {
        cp_async<16>(dst, src, valid > 0);
        return;
    }
    for (int e = 0; e < 8; ++e) dst[e] = e < valid ? src[e] : __float2bfloat16_rn(0.0f);
}

// One block a tile of one segment; table(count) with the tile prefix
// firstTile(count + 1) (tensor_chunks.cuh). The base tile is fetched first
// and lands while the product runs: a block waits on memory once.
__global__ void __launch_bounds__(Fold::kThreads)
    fold_low_rank_kernel(const FoldSegment* __restrict__ table, const long long* __restrict__ firstTile, int count) {
    using namespace nvcuda;
    constexpr int kRows = Fold::kRows, kCols = Fold::kCols, kK = Fold::kK;
    constexpr int kBPitch = Fold::kBPitch, kAPitch = Fold::kAPitch, kStagePitch = Fold::kStagePitch;
    extern __shared__ __align__(128) unsigned char shared[];
    auto* sBase = reinterpret_cast<float*>(shared);  // (kRows, kCols)
    const auto sliceB = [&](int stage) {  // (kRows, kK) of B, pitch kBPitch
        return reinterpret_cast<__nv_bfloat16*>(shared + Fold::kBaseBytes + stage * Fold::kSliceBytes);
    };
    const auto sliceA = [&](int stage) { return sliceB(stage) + kRows * kBPitch; };  // (kK, kCols), kAPitch

    const int t = tensorOfChunk(firstTile, count, blockIdx.x);
    const FoldSegment s = table[t];
    const int tileCols = (s.cols + kCols - 1) / kCols;
    const int tile = static_cast<int>(blockIdx.x - firstTile[t]);
    const int row0 = tile / tileCols * kRows, col0 = tile % tileCols * kCols;
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    const int warpRow = warp / Fold::kWarpCols * Fold::kWarpRows, warpCol = warp % Fold::kWarpCols * 32;

    const bool vectorBase = s.cols % 4 == 0 && aligned16(s.base);
    for (int i = threadIdx.x; i < kRows * kCols / 4; i += Fold::kThreads) {
        const int r = i / (kCols / 4), c = i % (kCols / 4) * 4;
        const int gr = row0 + r, gc = col0 + c;
        const float* src = s.base + static_cast<size_t>(gr) * s.cols + gc;
        if (vectorBase) {
            cp_async<16>(sBase + r * kCols + c, gr < s.rows && gc < s.cols ? src : s.base, gr < s.rows && gc < s.cols);
        } else {
            for (int e = 0; e < 4; ++e) sBase[r * kCols + c + e] = gr < s.rows && gc + e < s.cols ? src[e] : 0.0f;
        }
    }
    const bool vectors = s.rank % 8 == 0 && s.cols % 8 == 0 && aligned16(s.A) && aligned16(s.B);
    const auto loadSlice = [&](int stage, int k0) {  // eight-value pieces of each factor
        for (int i = threadIdx.x; i < kRows * kK / 8; i += Fold::kThreads) {
            const int r = i / (kK / 8), k = i % (kK / 8) * 8;
            const int gr = row0 + r, gk = k0 + k;
            foldLoadEight(sliceB(stage) + r * kBPitch + k, s.B + static_cast<size_t>(gr) * s.rank + gk,
                          gr < s.rows ? s.rank - gk : 0, vectors);
        }
        for (int i = threadIdx.x; i < kK * kCols / 8; i += Fold::kThreads) {
            const int k = i / (kCols / 8), c = i % (kCols / 8) * 8;
            const int gk = k0 + k, gc = col0 + c;
            foldLoadEight(sliceA(stage) + k * kAPitch + c, s.A + static_cast<size_t>(gk) * s.cols + gc,
                          gk < s.rank ? s.cols - gc : 0, vectors);
        }
    };
    loadSlice(0, 0);
    cp_async_commit();

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[Fold::kFragments][2];
    for (auto& row : acc)
        for (auto& f : row) wmma::fill_fragment(f, 0.0f);
    for (int k0 = 0, stage = 0; k0 < s.rank; k0 += kK, stage ^= 1) {
        if (k0 + kK < s.rank) loadSlice(stage ^ 1, k0 + kK);
        cp_async_commit();
        cp_async_wait<1>();  // all but the slice just started
        __syncthreads();
        const __nv_bfloat16 *sB = sliceB(stage), *sA = sliceA(stage);
        for (int kk = 0; kk < kK; kk += 16) {
            // B·A: B's rows are the product's left operand, A's columns its right.
            wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> right[2];
            for (int j = 0; j < 2; ++j) wmma::load_matrix_sync(right[j], sA + kk * kAPitch + warpCol + j * 16, kAPitch);
            for (int i = 0; i < Fold::kFragments; ++i) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> left;
                wmma::load_matrix_sync(left, sB + (warpRow + i * 16) * kBPitch + kk, kBPitch);
                for (int j = 0; j < 2; ++j) wmma::mma_sync(acc[i][j], left, right[j], acc[i][j]);
            }
        }
        __syncthreads();  // before the next pass loads over this slice
    }
    cp_async_wait<0>();  // the base, where the rank was 0
    __syncthreads();

    // Out a warp's 16 rows at a time, through the slices' memory, so that
    // each row's 32 columns are read and written as whole vectors.
    float* stage = reinterpret_cast<float*>(shared + Fold::kBaseBytes) + warp * 16 * kStagePitch;
    const bool vectorOut = s.cols % 4 == 0 && reinterpret_cast<uintptr_t>(s.target) % 8 == 0;
    for (int i = 0; i < Fold::kFragments; ++i) {
        for (int j = 0; j < 2; ++j) wmma::store_matrix_sync(stage + j * 16, acc[i][j], kStagePitch, wmma::mem_row_major);
        __syncwarp();
        for (int pass = 0; pass < 4; ++pass) {
            const int r = pass * 4 + lane / 8, c = lane % 8 * 4;
            const int tr = warpRow + i * 16 + r, tc = warpCol + c;  // in the tile
            const int gr = row0 + tr, gc = col0 + tc;
            if (gr >= s.rows || gc >= s.cols) continue;
            const size_t at = static_cast<size_t>(gr) * s.cols + gc;
            const float* product = stage + r * kStagePitch + c;
            const float* base = sBase + tr * kCols + tc;
            if (vectorOut) {
                storeAs4(s.target + at, make_float4(fmaf(s.scale, product[0], base[0]), fmaf(s.scale, product[1], base[1]),
                                                    fmaf(s.scale, product[2], base[2]), fmaf(s.scale, product[3], base[3])));
            } else {
                for (int e = 0; e < 4 && gc + e < s.cols; ++e)
                    s.target[at + e] = __float2bfloat16_rn(fmaf(s.scale, product[e], base[e]));
            }
        }
        __syncwarp();
    }
}

}  // namespace relora::gpu
