// Work split of the multi-tensor kernels: a table in device memory lists
// the tensors, each cut into chunks of kTensorChunk elements numbered across
// the table (firstChunk(count + 1) is the prefix: tensor t owns chunks
// firstChunk[t] .. firstChunk[t+1]-1); block b takes chunks b, b + grid, ...
#pragma once

#include <cstddef>

namespace relora::gpu {

constexpr size_t kTensorChunk = 32768;  // elements per chunk

// The tensor that owns `chunk`: the last t with firstChunk[t] <= chunk.
__device__ inline int tensorOfChunk(const long long* __restrict__ firstChunk, int count, long long chunk) {
    int lo = 0, hi = count - 1;
    while (lo < hi) {
        const int mid = (lo + hi + 1) / 2;
        if (firstChunk[mid] <= chunk) lo = mid;
        else hi = mid - 1;
    }
    return lo;
}

}  // namespace relora::gpu
