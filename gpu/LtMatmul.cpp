#include "gpu/LtMatmul.h"

#include "gpu/CudaCheck.h"

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace relora::gpu {
namespace {

// The largest of 16, 8, 4, 2 bytes that divides the address (1 if none).
int alignment(const void* p) {
    const auto address = reinterpret_cast<uintptr_t>(p);
    int bytes = 16;
    while (bytes > 1 && address % static_cast<uintptr_t>(bytes) != 0) bytes /= 2;
    return bytes;
}

// The alignment of every matrix of a batch: of the first, and of the step
// between them (bytes).
int alignment(const void* p, long long stepBytes) {
    return std::min(alignment(p), alignment(reinterpret_cast<const void*>(static_cast<uintptr_t>(stepBytes))));
}

// A (rows, cols) layout, `count` of them `stride` elements apart when count > 1.
cublasLtMatrixLayout_t layout(cudaDataType_t type, int rows, int cols, int ld, int count, long long stride) {
    cublasLtMatrixLayout_t l = nullptr;
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
    if (count > 1) {
        try {
            CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count));
            CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                          sizeof stride));
        } catch (...) {
            cublasLtMatrixLayoutDestroy(l);
            throw;
        }
    }
    return l;
}

template <typename T>
void setPreference(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t attribute, T value) {
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attribute, &value, sizeof value));
}

constexpr int kCandidates = 16;     // of the heuristic, timed on a shape's first product
constexpr int kTimedRuns = 4;       // per candidate, after one untimed run
constexpr float kMustBeat = 0.98f;  // the heuristic's first pick stays unless beaten by 2 %

bool autotuneEnabled() {
    const char* env = std::getenv("RELORA_CUBLASLT_AUTOTUNE");
    return !env || env[0] != '0';
}

// The algorithm chosen for each (device, shape), shared by every LtMatmul
// of the process: a second backend must not pick differently by timing noise.
std::mutex gChoicesMutex;
template <typename Shape>
std::map<std::pair<int, Shape>, cublasLtMatmulAlgo_t>& choices() {
    static std::map<std::pair<int, Shape>, cublasLtMatmulAlgo_t> map;
    return map;
}

// The first line of exported choices: what an algorithm is valid for.
std::string choicesHeader(int device) {
    cudaDeviceProp prop{};
    CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
    return "cublaslt-choices 1 " + std::to_string(cublasLtGetVersion()) + " sm_" + std::to_string(prop.major) +
           std::to_string(prop.minor) + " " + prop.name;
}

struct TimingEvent {
    cudaEvent_t event = nullptr;
    TimingEvent() { CUDA_CHECK(cudaEventCreate(&event)); }
    ~TimingEvent() { cudaEventDestroy(event); }
    TimingEvent(const TimingEvent&) = delete;
    TimingEvent& operator=(const TimingEvent&) = delete;
};

}  // namespace

std::string LtMatmul::exportChoices(int device) {
    std::ostringstream out;
    out << choicesHeader(device) << "\n";
    std::lock_guard guard(gChoicesMutex);
    for (const auto& [key, algo] : choices<Shape>()) {
        if (key.first != device) continue;
        std::apply([&](const auto&... field) { ((out << static_cast<long long>(field) << ' '), ...); }, key.second);
        out << std::hex;
        for (const uint64_t word : algo.data) out << ' ' << word;
        out << std::dec << "\n";
    }
    return out.str();
}

std::string LtMatmul::importChoices(int device, const std::string& text) {
    std::istringstream in(text);
    std::string header;
    std::getline(in, header);
    if (header != choicesHeader(device))
        return "the product algorithms were chosen for \"" + header + "\", this process runs \"" +
               choicesHeader(device) + "\"";
    std::map<Shape, cublasLtMatmulAlgo_t> taken;
    for (std::string line; std::getline(in, line);) {
        std::istringstream fields(line);
        Shape shape;
        bool ok = true;
        std::apply(
            [&](auto&... field) {
                ((ok = ok && [&] {
                      long long v = 0;
                      if (!(fields >> v)) return false;
                      field = static_cast<std::remove_reference_t<decltype(field)>>(v);
                      return true;
                  }()),
                 ...);
            },
            shape);
        cublasLtMatmulAlgo_t algo{};
        fields >> std::hex;
        for (uint64_t& word : algo.data) ok = ok && static_cast<bool>(fields >> word);
        if (!ok) return "damaged product-algorithm line: " + line;
        taken[shape] = algo;
    }
    std::lock_guard guard(gChoicesMutex);
    for (const auto& [shape, algo] : taken) choices<Shape>()[{device, shape}] = algo;
    return {};
}

void LtMatmul::refresh() {
    std::lock_guard guard(gChoicesMutex);
    const auto& chosen = choices<Shape>();
    for (auto& [shape, p] : plans_)
        if (const auto it = chosen.find({device_, shape}); it != chosen.end()) p.algo = it->second;
}

LtMatmul::LtMatmul(cudaStream_t stream, int device, void* workspace, size_t workspaceBytes, bool report)
    : stream_(stream), device_(device), report_(report), workspace_(workspace), workspaceBytes_(workspaceBytes) {
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
                      const void* B, int ldb, float beta, const void* C, void* D, int ldd, cudaDataType_t out,
                      const LtBatch& batch) {
    const long long outBytes = out == CUDA_R_16BF ? 2 : 4;
    const Shape shape{transA, transB, m, n, k, lda, ldb, ldd, static_cast<int>(out), alignment(A, 2 * batch.strideA),
                      alignment(B, 2 * batch.strideB),
                      std::min(alignment(C, outBytes * batch.strideD), alignment(D, outBytes * batch.strideD)),
                      batch.count, batch.strideA, batch.strideB, batch.strideD};
    const Plan& p = plan(shape, out, Trial{alpha, beta, A, B, C, D});
    CUBLAS_CHECK(cublasLtMatmul(handle_, p.op, &alpha, A, p.a, B, p.b, &beta, C, p.d, D, p.d, &p.algo, workspace_,
                                workspaceBytes_, stream_));
}

const LtMatmul::Plan& LtMatmul::plan(const Shape& shape, cudaDataType_t out, const Trial& trial) {
    if (auto it = plans_.find(shape); it != plans_.end()) return it->second;
    const auto [transA, transB, m, n, k, lda, ldb, ldd, type, alignA, alignB, alignD, count, strideA, strideB,
                strideD] = shape;
    Plan p;
    cublasLtMatmulPreference_t preference = nullptr;
    cublasLtMatmulHeuristicResult_t candidates[kCandidates]{};
    int found = 0;
    try {
        CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
        const cublasOperation_t opA = transA ? CUBLAS_OP_T : CUBLAS_OP_N, opB = transB ? CUBLAS_OP_T : CUBLAS_OP_N;
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &opA, sizeof opA));
        CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &opB, sizeof opB));
        // Stored shapes: op(A) is (m, k), op(B) is (k, n).
        p.a = transA ? layout(CUDA_R_16BF, k, m, lda, count, strideA) : layout(CUDA_R_16BF, m, k, lda, count, strideA);
        p.b = transB ? layout(CUDA_R_16BF, n, k, ldb, count, strideB) : layout(CUDA_R_16BF, k, n, ldb, count, strideB);
        p.d = layout(out, m, n, ldd, count, strideD);
        CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&preference));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, static_cast<uint64_t>(workspaceBytes_));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, static_cast<uint32_t>(alignA));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, static_cast<uint32_t>(alignB));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, static_cast<uint32_t>(alignD));
        setPreference(preference, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, static_cast<uint32_t>(alignD));
        CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.d, p.d, preference, kCandidates,
                                                    candidates, &found));
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
    {
        std::lock_guard guard(gChoicesMutex);
        auto& chosen = choices<Shape>();
        const auto key = std::make_pair(device_, shape);
        if (const auto it = chosen.find(key); it != chosen.end()) {
            p.algo = it->second;
        } else {
            // D may be written by trial runs unless it is also the addend.
            const bool mayTime = autotuneEnabled() && found > 1 && (trial.beta == 0.0f || trial.C != trial.D);
            try {
                p.algo = mayTime ? fastest(shape, p, candidates, found, trial) : candidates[0].algo;
            } catch (...) {
                release(p);
                throw;
            }
            chosen.emplace(key, p.algo);
        }
    }
    return plans_.emplace(shape, p).first->second;
}

cublasLtMatmulAlgo_t LtMatmul::fastest(const Shape& shape, const Plan& p,
                                       const cublasLtMatmulHeuristicResult_t* candidates, int count,
                                       const Trial& trial) {
    const TimingEvent begin, end;
    const auto run = [&](const cublasLtMatmulAlgo_t& algo) {
        return cublasLtMatmul(handle_, p.op, &trial.alpha, trial.A, p.a, trial.B, p.b, &trial.beta, trial.C, p.d,
                              trial.D, p.d, &algo, workspace_, workspaceBytes_, stream_);
    };
    float firstMs = -1.0f, bestMs = -1.0f;
    int best = -1;
    std::string all;
    for (int i = 0; i < count; ++i) {
        // A candidate cuBLASLt refuses at run time is passed over.
        if (run(candidates[i].algo) != CUBLAS_STATUS_SUCCESS) continue;
        CUDA_CHECK(cudaEventRecord(begin.event, stream_));
        bool ok = true;
        for (int r = 0; r < kTimedRuns && ok; ++r) ok = run(candidates[i].algo) == CUBLAS_STATUS_SUCCESS;
        CUDA_CHECK(cudaEventRecord(end.event, stream_));
        CUDA_CHECK(cudaEventSynchronize(end.event));
        float ms = 0.0f;
        CUDA_CHECK(cudaEventElapsedTime(&ms, begin.event, end.event));
        if (!ok) continue;
        if (report_) {
            char entry[32];
            std::snprintf(entry, sizeof entry, "%s%d: %.1f", all.empty() ? "" : ", ", i + 1, 1e3f * ms / kTimedRuns);
            all += entry;
        }
        if (i == 0) firstMs = ms;
        if (best < 0 || ms < (best == 0 ? kMustBeat : 1.0f) * bestMs) best = i, bestMs = ms;
    }
    if (best < 0) return candidates[0].algo;  // the product itself then reports cuBLASLt's error
    if (report_) {
        const auto [transA, transB, m, n, k, lda, ldb, ldd, type, alignA, alignB, alignD, batch, strideA, strideB,
                    strideD] = shape;
        std::fprintf(stderr,
                     "cuBLASLt %c%c m=%d n=%d k=%d%s%s, batch %d: heuristic's first %.1f us, candidate %d of %d %.1f us (%s)\n",
                     transA ? 'T' : 'N', transB ? 'T' : 'N', m, n, k, type == CUDA_R_16BF ? " bf16" : "",
                     trial.beta != 0.0f ? " +C" : "", batch, 1e3f * firstMs / kTimedRuns, best + 1, count,
                     1e3f * bestMs / kTimedRuns, all.c_str());
    }
    return candidates[best].algo;
}

}  // namespace relora::gpu
