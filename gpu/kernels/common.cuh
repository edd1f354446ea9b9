// Launch geometry and warp/block reductions shared by the kernels.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace relora::gpu {

constexpr int kThreads = 256;           // default block size
constexpr size_t kMaxGridBlocks = 8192; // grid-stride loops cover the rest

// Blocks for n items at `threads` per block, at least 1, at most kMaxGridBlocks.
inline unsigned gridFor(size_t n, int threads = kThreads) {
    size_t blocks = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
    if (blocks < 1) blocks = 1;
    if (blocks > kMaxGridBlocks) blocks = kMaxGridBlocks;
    return static_cast<unsigned>(blocks);
}

// A block for kernels that give each row of work one block row (threadIdx.y)
// of threads: whole warps as wide as the row's `items` (at most kThreads),
// and as many rows as make about 512 threads, as one row is too little
// work for a block. (RoPE, two 192-thread rows a block at 130m, measured
// no faster in the step than one row a block, so it keeps one.)
inline dim3 rowsBlock(size_t items) {
    const unsigned width = static_cast<unsigned>(std::min<size_t>(kThreads, (items + 31) / 32 * 32));
    return dim3(width, std::max(1u, 512u / width));
}

// Whether p may be read and written as float4 (16-byte aligned).
__host__ __device__ inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

__device__ inline size_t globalThread() {
    return static_cast<size_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ inline size_t gridThreads() { return static_cast<size_t>(gridDim.x) * blockDim.x; }

__device__ inline float warpSum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline double warpSum(double v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}
__device__ inline float warpMax(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every
// thread gets the result. `shared` holds 32 values. Fixed order: the result
// depends only on the inputs and the block size.
template <typename T>
__device__ inline T blockSum(T v, T* shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warpSum(v);
    __syncthreads();  // `shared` may still be read from a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : T(0);
    return warpSum(v);
}

// Maximum over the block, as blockSum.
__device__ inline float blockMax(float v, float* shared) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warpMax(v);
    __syncthreads();
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : -INFINITY;
    return warpMax(v);
}

}  // namespace relora::gpu
