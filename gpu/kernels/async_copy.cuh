// cp.async: copies from global into shared memory that run while the
// thread goes on (sm_80 and later), in committed groups it waits for. The
// flash attention's tiles and LoRA's fold kernel load through them.
#pragma once

#include <cstdint>

namespace relora::gpu {

__device__ __forceinline__ uint32_t smemAddress(const void* p) {
    return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// dst[0..bytes) = src[0..bytes) when valid, zeros otherwise (src is not read then).
template <int kBytes>
__device__ __forceinline__ void cp_async(void* dst, const void* src, bool valid) {
    static_assert(kBytes == 4 || kBytes == 16, "cp.async copies 4, 8 or 16 bytes");
    if constexpr (kBytes == 16)
        asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smemAddress(dst)), "l"(src),
                     "r"(valid ? 16 : 0));
    else
        asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smemAddress(dst)), "l"(src),
                     "r"(valid ? 4 : 0));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
// Waits until at most `kPending` of this thread's committed groups are in flight.
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending) : "memory");
}

}  // namespace relora::gpu
