#include "gpu/LtMatmul.h"

#include "gpu/CudaCheck.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace relora::gpu {
namespace {

// The largest of 16, 8, 4, 2 bytes that divides the address (1 if none).
int alignment(const void* p) {
    const auto address = reinterpret_cast<uintptr_t>(p);
    int bytes = 16;
    while (bytes > 1 && address % static_cast<uintptr_t>(bytes) != 0) bytes /= 2;
    return bytes;
}

cublasLtMatrixLayout_t layout(cudaDataType_t type, int rows, int cols, int ld) {
    cublasLtMatrixLayout_t l = nullptr;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
    return l;
}

template <typename T>
void setPreference(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attribute, T value) {
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attribute, &value, sizeof value));
}

}  // namespace

LtMatmul::LtMatmul(cudaStream_t stream, void* workspace, size_t workspaceBytes)
    : stream_(stream), workspace_(workspace), workspaceBytes_(workspaceBytes) {
    CUBLAS_CHECK(cublasLtCreate(&handle_));
}

LtMatmul::~LtMatmul() {
    for (auto& [shape, p] : plans_) release(p);
    if (handle_) cublasLtDestroy(handle_);
}

void LtMatmul::release(Plan& p) noexcept {
    if (p.a) cublasLtMatrixLayoutDestroy(p.a);
    if (p.b) cublasLtMatrixLayoutDestroy(p.b);
    if (p.d) cublasLtMatrixLayoutDestroy(p.d);
    if (p.op) cublasLtMatmulDescDestroy(p.op);
    p = Plan{};
}

void LtMatmul::matmul(bool transA, bool transB, int m, int n, int k, float alpha, const void* A, int lda,
                      const void* B, int ldb, float beta, const void* C, void* D, int ldd, cudaDataType_t out) {
    const Shape shape{transA, transB, m, n, k, lda, ldb, ldd, static_cast<int>(out), alignment(A), alignment(B),
                      std::min(alignment(C), alignment(D))};
    const Plan& p = plan(shape, out);
    CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, A, p.a, B, p.b, &beta, C, p.d, D, p.d, &p.algo, workspace_,
                                workspaceBytes_, stream_));
}

const LtMatmul::Plan& LtMatmul::plan(const Shape& shape, cudaDataType_t out) {
    if (auto it = plans_.find(shape); it != plans_.end()) return it->second;
    const auto [transA, transB, m, n, k, lda, ldb, ldd, type, alignA, alignB, alignD] = shape;
    Plan p;
    cublasLtMatmulPreference_t preference = nullptr;
    cublasLtMatmulHeuristicResult_t best{};
    int found = 0;
    try {
        CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N, opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB));
        // Stored shapes: op(A) is (m, k), op(B) is (k, n).
        p.a = transA ? layout(CUDA_R_16BF, k, m, lda) : layout(CUDA_R_16BF, m, k, lda);
        p.b = transB ? layout(CUDA_R_16BF, n, k, ldb) : layout(CUDA_R_16BF, k, n, ldb);
        p.d = layout(out, m, n, ldd);
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(workspaceBytes_));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(alignA));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(alignB));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(alignD));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(alignD));
        CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.d, p.d, preference, 1, &best, &found));
    } catch (...) {
        if (preference) cublasLtMatmulPreferenceDestroy(preference);
        release(p);
        throw;
    }
    cublasLtMatmulPreferenceDestroy(preference);
    if (found == 0) {
        release(p);
        throw std::runtime_error("cuBLASLt has no algorithm for a bf16 product of " + std::to_string(m) + "x" +
                                 std::to_string(k) + " by " + std::to_string(k) + "x" + std::to_string(n) +
                                 (type == CUDA_R_16BF ? " into bf16" : " into fp32"));
    }
    p.algo = best.algo;
    return plans_.emplace(shape, p).first->second;
}

}  // namespace relora::gpu
