// Loads and stores of activations kept in fp32 or bf16
// (Backend::allocateOperand): kernels that write or read such a buffer are
// templated on its element type and go through these.
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace relora::gpu {

// Four floats as four bf16 (round to nearest even) in 8 bytes.
__device__ inline uint2 packBf16x4(float4 x) {
    __nv_bfloat162 lo = __floats2bfloat162_rn(x.x, x.y), hi = __floats2bfloat162_rn(x.z, x.w);
    uint2 packed;
    packed.x = *reinterpret_cast<uint32_t*>(&lo);
    packed.y = *reinterpret_cast<uint32_t*>(&hi);
    return packed;
}

__device__ inline void storeAs(float* p, float v) { *p = v; }
__device__ inline void storeAs(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
// p[0..3] = v; p 16-byte (float) or 8-byte (bf16) aligned.
__device__ inline void storeAs4(float* p, float4 v) { *reinterpret_cast<float4*>(p) = v; }
__device__ inline void storeAs4(__nv_bfloat16* p, float4 v) { *reinterpret_cast<uint2*>(p) = packBf16x4(v); }
// p[0..1] = (a, b); p 8-byte (float) or 4-byte (bf16) aligned.
__device__ inline void storeAs2(float* p, float a, float b) { *reinterpret_cast<float2*>(p) = make_float2(a, b); }
__device__ inline void storeAs2(__nv_bfloat16* p, float a, float b) {
    *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(a, b);
}
__device__ inline float loadAsFloat(const float* p) { return *p; }
__device__ inline float loadAsFloat(const __nv_bfloat16* p) { return __bfloat162float(*p); }
// p[0..3]; p 16-byte (float) or 8-byte (bf16) aligned.
__device__ inline float4 loadAs4(const float* p) { return *reinterpret_cast<const float4*>(p); }
__device__ inline float4 loadAs4(const __nv_bfloat16* p) {
    const uint2 u = *reinterpret_cast<const uint2*>(p);
    const float2 lo = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.x));
    const float2 hi = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(&u.y));
    return make_float4(lo.x, lo.y, hi.x, hi.y);
}

}  // namespace relora::gpu
