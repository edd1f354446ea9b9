// Token embedding: forward gathers rows of the table; backward adds each
// token's gradient row into its table row. The backward is deterministic and
// sums in exactly the CPU backend's order: positions are sorted by token
// (stable radix sort of (token, position) pairs, done by the caller), then
// one block per distinct token walks its positions in increasing order,
// adding into the table row; no atomics.
#pragma once

#include "gpu/kernels/common.cuh"

#include <cstdint>

namespace relora::gpu {

// out(N,C) = table(V,C)[tokens(N)]. Block row threadIdx.y copies rows
// blockIdx.x·blockDim.y + threadIdx.y, stepping by the grid's rows; Vec is
// float4 when C % 4 == 0 and the pointers are 16-byte aligned, else float.
template <typename Vec>
__global__ void embedding_forward_kernel(float* __restrict__ out, const int32_t* __restrict__ tokens,
                                         const float* __restrict__ table, size_t N, size_t C) {
    const size_t vecs = C / (sizeof(Vec) / sizeof(float));
    for (size_t n = blockIdx.x * blockDim.y + threadIdx.y; n < N; n += gridDim.x * blockDim.y) {
        const Vec* src = reinterpret_cast<const Vec*>(table + static_cast<size_t>(tokens[n]) * C);
        Vec* dst = reinterpret_cast<Vec*>(out + n * C);
        for (size_t c = threadIdx.x; c < vecs; c += blockDim.x) dst[c] = src[c];
    }
}

// positions(N) = 0, 1, ..., N-1
__global__ void iota_kernel(int32_t* __restrict__ positions, size_t N) {
    for (size_t i = globalThread(); i < N; i += gridThreads()) positions[i] = static_cast<int32_t>(i);
}

// dtable(V,C) += Σ over positions of each token of dout(N,C) rows.
// sortedTokens(N), sortedPositions(N): the (token, position) pairs sorted by
// token, positions ascending within a token. A block starts at every
// position that opens a run of equal tokens; other blocks have nothing to do.
__global__ void embedding_backward_kernel(float* __restrict__ dtable, const float* __restrict__ dout,
                                          const int32_t* __restrict__ sortedTokens,
                                          const int32_t* __restrict__ sortedPositions, size_t N, size_t C) {
    for (size_t start = blockIdx.x; start < N; start += gridDim.x) {
        const int32_t token = sortedTokens[start];
        if (start > 0 && sortedTokens[start - 1] == token) continue;
        size_t end = start + 1;
        while (end < N && sortedTokens[end] == token) ++end;
        float* row = dtable + static_cast<size_t>(token) * C;
        for (size_t c = threadIdx.x; c < C; c += blockDim.x) {
            float acc = row[c];
            for (size_t k = start; k < end; ++k) acc += dout[static_cast<size_t>(sortedPositions[k]) * C + c];
            row[c] = acc;
        }
    }
}

}  // namespace relora::gpu
