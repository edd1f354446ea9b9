// Error checks for CUDA, cuBLAS and cuSOLVER calls. A failing call throws
// std::runtime_error naming the call, the library's error text, the file and
// the line, so a failing GPU run ends with a message instead of an abort.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cusolverDn.h>

#include <stdexcept>
#include <string>

namespace relora::gpu {

[[noreturn]] inline void throwGpuError(const char* library, const char* call, const std::string& what,
                                       const char* file, int line) {
    throw std::runtime_error(std::string(library) + " error: " + call + " failed: " + what + " (" + file +
                             ":" + std::to_string(line) + ")");
}

inline void checkCuda(cudaError_t e, const char* call, const char* file, int line) {
    if (e == cudaSuccess) return;
    throwGpuError("CUDA", call, std::string(cudaGetErrorName(e)) + ": " + cudaGetErrorString(e), file, line);
}

inline void checkCublas(cublasStatus_t s, const char* call, const char* file, int line) {
    if (s == CUBLAS_STATUS_SUCCESS) return;
    throwGpuError("cuBLAS", call, cublasGetStatusString(s), file, line);
}

inline const char* cusolverStatusText(cusolverStatus_t s) {
    switch (s) {
    case CUSOLVER_STATUS_NOT_INITIALIZED: return "CUSOLVER_STATUS_NOT_INITIALIZED";
    case CUSOLVER_STATUS_ALLOC_FAILED: return "CUSOLVER_STATUS_ALLOC_FAILED";
    case CUSOLVER_STATUS_INVALID_VALUE: return "CUSOLVER_STATUS_INVALID_VALUE";
    case CUSOLVER_STATUS_ARCH_MISMATCH: return "CUSOLVER_STATUS_ARCH_MISMATCH";
    case CUSOLVER_STATUS_EXECUTION_FAILED: return "CUSOLVER_STATUS_EXECUTION_FAILED";
    case CUSOLVER_STATUS_INTERNAL_ERROR: return "CUSOLVER_STATUS_INTERNAL_ERROR";
    case CUSOLVER_STATUS_NOT_SUPPORTED: return "CUSOLVER_STATUS_NOT_SUPPORTED";
    default: return "cuSOLVER status";
    }
}

inline void checkCusolver(cusolverStatus_t s, const char* call, const char* file, int line) {
    if (s == CUSOLVER_STATUS_SUCCESS) return;
    throwGpuError("cuSOLVER", call, cusolverStatusText(s) + std::string(" (") + std::to_string(int(s)) + ")",
                  file, line);
}

}  // namespace relora::gpu

#define CUDA_CHECK(call) ::relora::gpu::checkCuda((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::relora::gpu::checkCublas((call), #call, __FILE__, __LINE__)
#define CUSOLVER_CHECK(call) ::relora::gpu::checkCusolver((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors surface here, faults of
// the kernel itself at the next synchronising call.
#define CUDA_CHECK_LAUNCH(name) ::relora::gpu::checkCuda(cudaGetLastError(), name, __FILE__, __LINE__)
