// LtMatmul: the bf16 matrix products of the CUDA backend through cuBLASLt,
// with one plan per product shape: the operation and layout descriptors and
// an algorithm, made on the first product of that shape and reused ever
// after (a training step repeats a few dozen shapes). The algorithm is the
// fastest of the heuristic's candidates, timed once on that first product
// (the heuristic's first pick unless another beats it by 2 %), and the
// choice is kept for the whole process, so every backend of a process
// multiplies a shape with the same algorithm, and with it the same
// rounding. RELORA_CUBLASLT_AUTOTUNE=0 takes the heuristic's first pick
// without timing: the same algorithm in every process on a GPU model.
// cuBLASLt also takes an addend C apart from the output D, which lets a
// product land on a residual stream without a copy of it first.
// Host code only; internal to gpu/.
#pragma once

#include <cublasLt.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <map>
#include <string>
#include <tuple>

namespace relora::gpu {

// `count` products of one shape: the i-th at A + i·strideA, B + i·strideB,
// C and D + i·strideD (elements).
struct LtBatch {
    int count = 1;
    long long strideA = 0, strideB = 0, strideD = 0;
};

class LtMatmul {
public:
    // Products run on `stream` of `device` with `workspace` (bytes) as
    // cuBLASLt's scratch. `report` prints each timed choice, with every
    // candidate's time, to stderr.
    LtMatmul(cudaStream_t stream, int device, void* workspace, size_t workspaceBytes, bool report);
    ~LtMatmul();
    LtMatmul(const LtMatmul&) = delete;
    LtMatmul& operator=(const LtMatmul&) = delete;

    // Column-major, as cuBLAS: D(m,n) = alpha·op(A)·op(B) + beta·C with A and
    // B bf16, C and D (same layout, ldd; C may be D) of type `out`
    // (CUDA_R_32F or CUDA_R_16BF), fp32 accumulation.
    void matmul(bool transA, bool transB, int m, int n, int k, float alpha, const void* A, int lda,
                const void* B, int ldb, float beta, const void* C, void* D, int ldd, cudaDataType_t out,
                const LtBatch& batch = {});

    // The process's choices for `device` as text: a line naming the GPU
    // model and the cuBLASLt version, then a line per product shape.
    static std::string exportChoices(int device);
    // Takes choices written by exportChoices (overriding this process's for
    // the same shapes); "" when taken, otherwise why not: another GPU model
    // or cuBLASLt version (whose algorithms need not exist or round alike
    // here), or damaged text. Existing LtMatmuls see them after refresh().
    static std::string importChoices(int device, const std::string& text);
    // Plans made before an import take its algorithms.
    void refresh();

private:
    // Everything the heuristic's choice depends on, pointer alignment included.
    using Shape = std::tuple<bool, bool, int, int, int, int, int, int, int, int, int, int, int, long long, long long,
                             long long>;
    struct Plan {
        cublasLtMatmulDesc_t op = nullptr;
        cublasLtMatrixLayout_t a = nullptr, b = nullptr, d = nullptr;
        cublasLtMatmulAlgo_t algo{};
    };
    // What a first product gives the timing: its operands, and whether
    // trial runs may write D (not when D is also the addend it reads).
    struct Trial {
        float alpha, beta;
        const void *A, *B, *C;
        void* D;
    };
    const Plan& plan(const Shape& shape, cudaDataType_t out, const Trial& trial);
    cublasLtMatmulAlgo_t fastest(const Shape& shape, const Plan& p, const cublasLtMatmulHeuristicResult_t* candidates,
                                 int count, const Trial& trial);
    static void release(Plan& p) noexcept;

    cudaStream_t stream_;
    int device_;
    bool report_;
    void* workspace_;
    size_t workspaceBytes_;
    cublasLtHandle_t handle_ = nullptr;
    std::map<Shape, Plan> plans_;
};

}  // namespace relora::gpu
