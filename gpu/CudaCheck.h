// Error checks for CUDA and cuBLAS calls. A failing call throws
// std::runtime_error naming the call, the library's error text, the file and
// the line, so a failing GPU run ends with a message instead of an abort.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

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

}  // namespace relora::gpu

#define CUDA_CHECK(call) ::relora::gpu::checkCuda((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) ::relora::gpu::checkCublas((call), #call, __FILE__, __LINE__)
// After a kernel launch: launch-configuration errors surface here, faults of
// the kernel itself at the next synchronising call.
#define CUDA_CHECK_LAUNCH(name) ::relora::gpu::checkCuda(cudaGetLastError(), name, __FILE__, __LINE__)
