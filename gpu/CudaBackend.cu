// CudaBackend: device memory, transfers, cuBLAS products, deterministic
// reductions, AdamW, pruning, the Gram matrices of the spectra, and the plugin
// that makes the backend known to the engine (registerCudaBackend).
#include "gpu/CudaBackend.h"
#include "gpu/CudaBackendImpl.h"

#include "core/BackendRegistry.h"
#include "gpu/kernels/adamw.cuh"
#include "gpu/kernels/common.cuh"
#include "gpu/kernels/convert.cuh"
#include "gpu/kernels/lowrank_fold.cuh"
#include "gpu/kernels/multi_tensor.cuh"
#include "gpu/kernels/prune.cuh"
#include "gpu/kernels/reduce.cuh"

#include <cub/device/device_radix_sort.cuh>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#include <sys/mman.h>

namespace relora::gpu {
namespace {

constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;  // NVIDIA's advice for Hopper

// Does nothing; its attributes tell whether this build's kernels can run
// on the device (a build for sm_90 cannot run on an older GPU).
__global__ void probe_kernel() {}

int toInt(size_t v, const char* what) {
    if (v > static_cast<size_t>(INT_MAX))
        throw std::runtime_error(std::string("CUDA backend: ") + what + " = " + std::to_string(v) +
                                 " exceeds the 32-bit range of cuBLAS");
    return static_cast<int>(v);
}

bool probeDevice(std::string* why) {
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        if (why)
            *why = std::string("no CUDA device found (cudaGetDeviceCount: ") +
                   (e != cudaSuccess ? cudaGetErrorString(e) : "0 devices") + ")";
        cudaGetLastError();  // clear the error state
        return false;
    }
    cudaFuncAttributes attributes{};
    e = cudaFuncGetAttributes(&attributes, probe_kernel);
    if (e != cudaSuccess) {
        cudaDeviceProp prop{};
        cudaGetDeviceProperties(&prop, 0);
        if (why)
            *why = std::string("CUDA device 0 (") + prop.name + ", compute capability " +
                   std::to_string(prop.major) + "." + std::to_string(prop.minor) +
                   ") cannot run this build's kernels (" + cudaGetErrorString(e) +
                   "); rebuild with CMAKE_CUDA_ARCHITECTURES=" + std::to_string(prop.major * 10 + prop.minor);
        cudaGetLastError();
        return false;
    }
    return true;
}

}  // namespace

void registerCudaBackend() {
    BackendPlugin plugin;
    plugin.probe = probeDevice;
    plugin.create = [](const BackendOptions& options) -> std::unique_ptr<Backend> {
        return std::make_unique<CudaBackend>(options);
    };
    relora::registerCudaBackend(std::move(plugin));
}

// ---- lifetime ----------------------------------------------------------------

CudaBackend::CudaBackend(const BackendOptions& options) : bf16_(options.bf16MatMul) {
    if (const char* env = std::getenv("RELORA_CUDA_PROFILE")) profile_ = env[0] != '\0' && env[0] != '0';
    // Downloads before the profile starts counting (a training step makes two).
    if (const char* env = std::getenv("RELORA_CUDA_PROFILE_SKIP_DOWNLOADS")) profSkipDownloads_ = std::atol(env);
    try {
        CUDA_CHECK(cudaSetDevice(device_));
        cudaDeviceProp prop{};
        CUDA_CHECK(cudaGetDeviceProperties(&prop, device_));
        deviceName_ = prop.name;
        smCount_ = prop.multiProcessorCount;
        // The main stream first, the deferred products' side stream (default
        // priority, the lowest) where SMs are left: the main stream holds
        // the step's critical path (on the H100 this ran 60m 0.5-1.4 % faster).
        int leastPriority = 0, greatestPriority = 0;
        CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&leastPriority, &greatestPriority));
        CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, greatestPriority));
        CUDA_CHECK(cudaEventCreateWithFlags(&stagingFree_, cudaEventDisableTiming));
        CUBLAS_CHECK(cublasCreate(&cublas_));
        CUBLAS_CHECK(cublasSetStream(cublas_, stream_));
        // Default math: CUBLAS_COMPUTE_32F then really is fp32 (no TF32);
        // bf16 tensor cores only where the compute type asks for them.
        CUBLAS_CHECK(cublasSetMathMode(cublas_, CUBLAS_DEFAULT_MATH));
        computeType_ = bf16_ ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
        // Our own workspace: cuBLAS never allocates behind our back, and
        // its algorithm choice (hence its rounding) stays fixed.
        void* workspace = ensure(cublasWorkspace_, kCublasWorkspaceBytes);
        CUBLAS_CHECK(cublasSetWorkspace(cublas_, workspace, kCublasWorkspaceBytes));
        // RELORA_CUBLASLT_REPORT=1 prints the algorithm timings without the op profile.
        const char* reportEnv = std::getenv("RELORA_CUBLASLT_REPORT");
        const bool report = profile_ || (reportEnv && reportEnv[0] == '1');
        // Same stream, so cuBLAS and cuBLASLt never use the workspace at once.
        lt_ = std::make_unique<LtMatmul>(stream_, device_, workspace, kCublasWorkspaceBytes, report);
        const char* sideEnv = std::getenv("RELORA_CUDA_SIDE_STREAM");
        if (bf16_ && !profile_ && !(sideEnv && sideEnv[0] == '0')) {
            side_ = std::make_unique<SideStream>();
            sideLt_ = std::make_unique<LtMatmul>(side_->stream(), device_,
                                                 ensure(sideWorkspace_, kCublasWorkspaceBytes),
                                                 kCublasWorkspaceBytes, report);
        }
        ensure(reducePartials_, kReduceBlocks * sizeof(double));
        CUDA_CHECK(cudaFuncSetAttribute(fold_low_rank_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        Fold::kSharedBytes));
        CUDA_CHECK(cudaStreamSynchronize(stream_));
    } catch (...) {
        destroy();
        throw;
    }
}

CudaBackend::~CudaBackend() { destroy(); }

std::string CudaBackend::productChoices() const { return LtMatmul::exportChoices(device_); }

std::string CudaBackend::adoptProductChoices(const std::string& choices) {
    if (choices.empty()) return {};
    std::string why = LtMatmul::importChoices(device_, choices);
    if (!why.empty()) return why;
    lt_->refresh();
    if (sideLt_) sideLt_->refresh();
    return {};
}

void CudaBackend::destroy() noexcept {
    sideLt_.reset();
    side_.reset();  // waits for its work
    if (stream_) cudaStreamSynchronize(stream_);
    if (profile_) {
        try {
            profPrint();
        } catch (...) {
        }
        for (auto& s : profSlots_) {
            cudaEventDestroy(s.begin);
            cudaEventDestroy(s.end);
        }
        profSlots_.clear();
    }
    spectraWorker_.reset();  // joins its thread after the submitted work
    for (cudaEvent_t e : spectraReady_) cudaEventDestroy(e);
    spectraReady_.clear();
    lt_.reset();
    if (cublas_) cublasDestroy(cublas_);
    for (auto& [ptr, bytes] : sizes_) cudaFree(ptr);  // scratch, and anything not released
    sizes_.clear();
    for (auto& [handle, stored] : bf16Stored_)
        munmap(reinterpret_cast<void*>(handle), std::max<size_t>(stored.count, 1) * sizeof(float));
    bf16Stored_.clear();
    if (staging_) cudaFreeHost(staging_);
    if (stagingFree_) cudaEventDestroy(stagingFree_);
    if (stream_) cudaStreamDestroy(stream_);
    cublas_ = nullptr;
    staging_ = nullptr;
    stagingFree_ = nullptr;
    stream_ = nullptr;
}

// ---- op profile ------------------------------------------------------------------

int CudaBackend::profBegin(const std::string& label) {
    if (profUsed_ == profSlots_.size()) {
        if (profSlots_.size() >= 16384) profResolve();
        if (profUsed_ == profSlots_.size()) {
            ProfSlot s;
            CUDA_CHECK(cudaEventCreate(&s.begin));
            CUDA_CHECK(cudaEventCreate(&s.end));
            profSlots_.push_back(std::move(s));
        }
    }
    ProfSlot& s = profSlots_[profUsed_];
    s.label = label;
    CUDA_CHECK(cudaEventRecord(s.begin, stream_));
    return static_cast<int>(profUsed_++);
}

void CudaBackend::profEnd(int slot) { CUDA_CHECK(cudaEventRecord(profSlots_[slot].end, stream_)); }

void CudaBackend::profResolve() {
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (size_t i = 0; i < profUsed_; ++i) {
        float ms = 0;
        CUDA_CHECK(cudaEventElapsedTime(&ms, profSlots_[i].begin, profSlots_[i].end));
        auto& t = profTotals_[profSlots_[i].label];
        t.first += ms;
        t.second += 1;
    }
    profUsed_ = 0;
}

void CudaBackend::profPrint() {
    profResolve();
    std::vector<std::pair<std::string, std::pair<double, long>>> rows(profTotals_.begin(), profTotals_.end());
    std::sort(rows.begin(), rows.end(), [](const auto& a, const auto& b) { return a.second.first > b.second.first; });
    double total = 0;
    for (const auto& r : rows) total += r.second.first;
    std::fprintf(stderr, "cuda op profile (%s): %.1f ms in ops\n", deviceName_.c_str(), total);
    std::fprintf(stderr, "%10s %6s %8s %10s  %s\n", "ms", "%", "calls", "us/call", "op");
    for (const auto& r : rows)
        std::fprintf(stderr, "%10.2f %6.2f %8ld %10.1f  %s\n", r.second.first, 100.0 * r.second.first / total,
                     r.second.second, 1e3 * r.second.first / r.second.second, r.first.c_str());
    profTotals_.clear();
}

// ---- memory --------------------------------------------------------------------

void* CudaBackend::rawAllocate(size_t bytes) {
    void* ptr = nullptr;
    const cudaError_t e = cudaMalloc(&ptr, std::max<size_t>(bytes, 256));
    if (e != cudaSuccess) {
        cudaGetLastError();
        size_t freeBytes = 0, totalBytes = 0;
        cudaMemGetInfo(&freeBytes, &totalBytes);
        throw std::runtime_error("CUDA backend: cannot allocate " + std::to_string(bytes >> 20) + " MiB on " +
                                 deviceName_ + " (" + cudaGetErrorString(e) + "; " +
                                 std::to_string(freeBytes >> 20) + " of " + std::to_string(totalBytes >> 20) +
                                 " MiB free, " + std::to_string(liveBytes_ >> 20) + " MiB held by this run)");
    }
    sizes_[ptr] = bytes;
    liveBytes_ += bytes;
    peakBytes_ = std::max(peakBytes_, liveBytes_);
    CUDA_CHECK(cudaMemsetAsync(ptr, 0, std::max<size_t>(bytes, 256), stream_));
    return ptr;
}

void CudaBackend::rawRelease(void* ptr) {
    if (!ptr) return;
    const auto it = sizes_.find(ptr);
    if (it == sizes_.end()) throw std::runtime_error("CUDA backend: release of a pointer it did not allocate");
    liveBytes_ -= it->second;
    forgetBf16OperandsIn(static_cast<const float*>(ptr),
                         static_cast<const float*>(ptr) + it->second / sizeof(float));
    sizes_.erase(it);
    CUDA_CHECK(cudaFree(ptr));  // waits for work in flight that may still use it
}

void* CudaBackend::ensure(Scratch& s, size_t bytes) {
    if (s.ptr && s.bytes >= bytes) return s.ptr;
    // Grow with headroom so that slowly growing requests do not reallocate each time.
    const size_t want = std::max(bytes, s.bytes + s.bytes / 4);
    rawRelease(s.ptr);
    s.ptr = nullptr;
    s.bytes = 0;
    s.ptr = rawAllocate(want);
    s.bytes = want;
    return s.ptr;
}

float* CudaBackend::allocate(size_t count) { return static_cast<float*>(rawAllocate(count * sizeof(float))); }

float* CudaBackend::allocateOperand(size_t count) {
    if (!bf16_) return allocate(count);
    auto* data = static_cast<__nv_bfloat16*>(rawAllocate(count * sizeof(__nv_bfloat16)));
    void* handle = mmap(nullptr, std::max<size_t>(count, 1) * sizeof(float), PROT_NONE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (handle == MAP_FAILED) {
        rawRelease(data);
        throw std::runtime_error("CUDA backend: cannot reserve address space for an operand buffer");
    }
    bf16Stored_[reinterpret_cast<uintptr_t>(handle)] = {data, count};
    return static_cast<float*>(handle);
}

__nv_bfloat16* CudaBackend::storedBf16(const float* p) const {
    if (bf16Stored_.empty() || !p) return nullptr;
    auto it = bf16Stored_.upper_bound(reinterpret_cast<uintptr_t>(p));
    if (it == bf16Stored_.begin()) return nullptr;
    --it;
    const size_t k = static_cast<size_t>(p - reinterpret_cast<const float*>(it->first));
    return k < it->second.count ? it->second.data + k : nullptr;
}

void CudaBackend::releaseOperand(std::map<uintptr_t, StoredBf16>::iterator it) {
    rawRelease(it->second.data);
    munmap(reinterpret_cast<void*>(it->first), std::max<size_t>(it->second.count, 1) * sizeof(float));
    bf16Stored_.erase(it);
}

void CudaBackend::requireFp32(const float* p, const char* op) const {
    if (storedBf16(p))
        throw std::logic_error(std::string("CUDA backend: ") + op + " was given a bf16 operand buffer");
}

int32_t* CudaBackend::allocateInts(size_t count) {
    return static_cast<int32_t*>(rawAllocate(count * sizeof(int32_t)));
}

void CudaBackend::release(void* ptr) {
    // Called from destructors (the model's): report a failure, never throw.
    try {
        joinSide();
        if (const auto it = bf16Stored_.find(reinterpret_cast<uintptr_t>(ptr)); it != bf16Stored_.end())
            releaseOperand(it);
        else
            rawRelease(ptr);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "CUDA backend: release failed: %s\n", e.what());
    }
}

void CudaBackend::uploadBytes(void* dst, const void* host, size_t bytes) {
    if (bytes == 0) return;
    beforeWrites({{static_cast<const float*>(dst), bytes / sizeof(float)}});
    forgetBf16OperandsIn(static_cast<const float*>(dst), static_cast<const float*>(dst) + bytes / sizeof(float));
    CUDA_CHECK(cudaEventSynchronize(stagingFree_));  // the last copy out of staging_ is done
    if (bytes > stagingBytes_) {
        if (staging_) CUDA_CHECK(cudaFreeHost(staging_));
        staging_ = nullptr;
        stagingBytes_ = 0;
        CUDA_CHECK(cudaMallocHost(&staging_, bytes));
        stagingBytes_ = bytes;
    }
    std::memcpy(staging_, host, bytes);
    CUDA_CHECK(cudaMemcpyAsync(dst, staging_, bytes, cudaMemcpyHostToDevice, stream_));
    CUDA_CHECK(cudaEventRecord(stagingFree_, stream_));
}

void CudaBackend::upload(float* dst, const float* host, size_t count) {
    uploadBytes(dst, host, count * sizeof(float));
}

void CudaBackend::uploadInts(int32_t* dst, const int32_t* host, size_t count) {
    uploadBytes(dst, host, count * sizeof(int32_t));
}

void CudaBackend::download(float* host, const float* src, size_t count) {
    if (count == 0) return;
    joinSide();
    if (profile_ && ++profDownloads_ == profSkipDownloads_) {
        // End of the warm-up: drop what was timed so far (first launches load
        // modules and pick algorithms; they are no steady-state cost).
        profResolve();
        profTotals_.clear();
    }
    if (const __nv_bfloat16* src16 = storedBf16(src)) {
        std::vector<__nv_bfloat16> values(count);
        CUDA_CHECK(cudaMemcpyAsync(values.data(), src16, count * sizeof(__nv_bfloat16), cudaMemcpyDeviceToHost, stream_));
        CUDA_CHECK(cudaStreamSynchronize(stream_));
        std::transform(values.begin(), values.end(), host, [](__nv_bfloat16 v) { return __bfloat162float(v); });
        return;
    }
    CUDA_CHECK(cudaMemcpyAsync(host, src, count * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::downloadInts(int32_t* host, const int32_t* src, size_t count) {
    if (count == 0) return;
    joinSide();
    CUDA_CHECK(cudaMemcpyAsync(host, src, count * sizeof(int32_t), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaBackend::copy(float* dst, const float* src, size_t count) {
    RELORA_OP_WRITES("copy", {dst, count});
    requireFp32(src, "copy");
    beforeRead(src, count);
    if (count == 0 || dst == src) return;
    if (__nv_bfloat16* dst16 = storedBf16(dst)) return narrow(dst16, src, count);
    CUDA_CHECK(cudaMemcpyAsync(dst, src, count * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
}

void CudaBackend::synchronize() {
    joinSide();
    CUDA_CHECK(cudaStreamSynchronize(stream_));
}

// ---- matrix products -------------------------------------------------------------
// cuBLAS is column-major: a row-major (r, c) matrix is the column-major
// (c, r) transpose, so C = op(A)·op(B) is computed as Cᵀ = op(B)ᵀ·op(A)ᵀ,
// i.e. with the operands swapped and M, N exchanged.

void CudaBackend::gemm(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha, const float* A,
                       size_t lda, const float* B, size_t ldb, float beta, float* C, size_t ldc) {
    product(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, C, ldc);
}

void CudaBackend::gemmAdd(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha, const float* A,
                          size_t lda, const float* B, size_t ldb, const float* R, float* C, size_t ldc) {
    if ((storedBf16(R) != nullptr) != (storedBf16(C) != nullptr))
        throw std::logic_error("gemmAdd: the addend and the output must have the same storage");
    product(transA, transB, M, N, K, alpha, A, lda, B, ldb, 1.0f, R, C, ldc);
}

void CudaBackend::product(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha, const float* A,
                          size_t lda, const float* B, size_t ldb, float beta, const float* addend, float* C,
                          size_t ldc) {
    if (M == 0 || N == 0) return;
    std::string label;
    if (profile_) {
        char buf[96];
        std::snprintf(buf, sizeof buf, "gemm %c%c M=%zu N=%zu K=%zu%s", transA ? 'T' : 'N', transB ? 'T' : 'N', M,
                      N, K, addend != C ? " +R" : beta != 0.0f ? " +C" : "");
        label = buf;
    }
    ProfScope prof(*this, label);
    // bf16 mode: both operands rounded to bf16 by our own kernel (or taken
    // from the operand cache) and given to cuBLASLt as bf16 (fp32
    // accumulation and output). Products with a huge fp32 operand keep
    // cuBLAS's own conversion rather than a copy of that size. Products of
    // two small operands (LoRA's fold W + s·B·A), where two conversion
    // launches would cost more than the product, run in TF32. Operand
    // buffers are bf16 already, as operands and as the output.
    const size_t rowsA = transA ? K : M, colsA = transA ? M : K;
    const size_t rowsB = transB ? N : K, colsB = transB ? K : N;
    const size_t sizeA = rowsA * colsA, sizeB = rowsB * colsB;
    constexpr size_t kMaxConvert = size_t{64} << 20, kMinConvert = size_t{1} << 20;  // elements
    const __nv_bfloat16 *storedA = storedBf16(A), *storedB = storedBf16(B);
    __nv_bfloat16* storedC = storedBf16(C);
    const float* endC = C + (M - 1) * ldc + N;
    if (storedA || storedB || storedC ||
        (bf16_ && sizeA <= kMaxConvert && sizeB <= kMaxConvert && std::max(sizeA, sizeB) > kMinConvert)) {
        size_t lda16 = lda, ldb16 = ldb;
        // A deferred product goes to the side stream when neither operand needs converting.
        Bf16Operand *slotA = nullptr, *slotB = nullptr;
        const __nv_bfloat16* a16 = storedA ? storedA : cachedBf16Operand(A, rowsA, colsA, lda, &lda16, &slotA);
        const __nv_bfloat16* b16 = storedB ? storedB : cachedBf16Operand(B, rowsB, colsB, ldb, &ldb16, &slotB);
        const bool side = onSide(a16 && b16 && addend == C);
        if (side) {
            side_->follow(stream_);
        } else {
            beforeWrites({{C, static_cast<size_t>(endC - C)}});
            beforeRead(A, (rowsA - 1) * lda + colsA);
            beforeRead(B, (rowsB - 1) * ldb + colsB);
            if (!a16) a16 = bf16Operand(A, rowsA, colsA, lda, &lda16);
            if (!b16) b16 = bf16Operand(B, rowsB, colsB, ldb, &ldb16);
        }
        const void* addendD = storedC ? static_cast<const void*>(storedBf16(addend)) : addend;
        (side ? *sideLt_ : *lt_)
            .matmul(transB, transA, toInt(N, "N"), toInt(M, "M"), toInt(K, "K"), alpha, b16, toInt(ldb16, "ldb"),
                    a16, toInt(lda16, "lda"), beta, addendD, storedC ? static_cast<void*>(storedC) : C,
                    toInt(ldc, "ldc"), storedC ? CUDA_R_16BF : CUDA_R_32F);
        if (side)
            sideIssued({{storedA ? A : nullptr, storedA ? A + (rowsA - 1) * lda + colsA : nullptr, false},
                        {storedB ? B : nullptr, storedB ? B + (rowsB - 1) * ldb + colsB : nullptr, false},
                        {C, endC, true}},
                       slotA, slotB);
    } else {
        beforeWrites({{C, static_cast<size_t>(endC - C)}});
        beforeRead(A, (rowsA - 1) * lda + colsA);
        beforeRead(B, (rowsB - 1) * ldb + colsB);
        // TF32 tensor cores take two small fp32 operands (LoRA's fold,
        // ReLoRA's merge, ΔW for the spectra) as they are, in one launch.
        const cublasComputeType_t compute =
            bf16_ && std::max(sizeA, sizeB) <= kMinConvert ? CUBLAS_COMPUTE_32F_FAST_TF32 : computeType_;
        if (addend != C)  // cuBLAS has no separate addend: copy it into C, rows of N
            CUDA_CHECK(cudaMemcpy2DAsync(C, ldc * sizeof(float), addend, ldc * sizeof(float), N * sizeof(float), M,
                                         cudaMemcpyDeviceToDevice, stream_));
        CUBLAS_CHECK(cublasGemmEx(cublas_, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  toInt(N, "N"), toInt(M, "M"), toInt(K, "K"), &alpha, B, CUDA_R_32F,
                                  toInt(ldb, "ldb"), A, CUDA_R_32F, toInt(lda, "lda"), &beta, C, CUDA_R_32F,
                                  toInt(ldc, "ldc"), compute, CUBLAS_GEMM_DEFAULT));
    }
    forgetBf16OperandsIn(C, endC);
}

void CudaBackend::sideIssued(std::initializer_list<SideStream::Range> ranges, Bf16Operand* slotA,
                             Bf16Operand* slotB) {
    const size_t ticket = side_->issued(ranges);
    for (Bf16Operand* slot : {slotA, slotB})
        if (slot) slot->sideTicket = ticket;
}

void CudaBackend::beforeWrites(std::initializer_list<Written> ranges) {
    if (!side_) return;
    for (const Written& w : ranges)
        if (w.begin && w.count) side_->beforeWrite(stream_, w.begin, w.begin + w.count);
}

void CudaBackend::beforeRead(const float* begin, size_t count) {
    if (side_ && begin && count) side_->beforeRead(stream_, begin, begin + count);
}

void CudaBackend::joinSide() {
    if (side_) side_->join(stream_);
}

const __nv_bfloat16* CudaBackend::cachedBf16Operand(const float* src, size_t rows, size_t cols, size_t ld,
                                                    size_t* ld16, Bf16Operand** slot) {
    ++bf16Clock_;
    // A cached copy of a matrix with the same row stride that contains this
    // one (the whole matrix, or a block of its columns and rows).
    for (Bf16Operand& o : bf16Operands_) {
        if (!o.src || o.ld != ld || src < o.src) continue;
        const size_t offset = static_cast<size_t>(src - o.src), row = offset / ld, col = offset % ld;
        if (row + rows > o.rows || col + cols > o.cols) continue;
        o.lastUse = bf16Clock_;
        *ld16 = o.cols;
        *slot = &o;
        return static_cast<const __nv_bfloat16*>(o.copy.ptr) + row * o.cols + col;
    }
    return nullptr;
}

const __nv_bfloat16* CudaBackend::bf16Operand(const float* src, size_t rows, size_t cols, size_t ld,
                                              size_t* ld16) {
    Bf16Operand* slot = nullptr;
    if (const __nv_bfloat16* cached = cachedBf16Operand(src, rows, cols, ld, ld16, &slot)) return cached;
    __nv_bfloat16* copy = claimBf16Operand(src, rows, cols, ld);
    to_bf16_kernel<<<gridFor(rows * cols / 4 + 1), kThreads, 0, stream_>>>(copy, src, rows, cols, ld);
    CUDA_CHECK_LAUNCH("to_bf16_kernel");
    *ld16 = cols;
    return copy;
}

__nv_bfloat16* CudaBackend::claimBf16Operand(const float* src, size_t rows, size_t cols, size_t ld,
                                             bool transient) {
    const size_t bytes = rows * cols * sizeof(__nv_bfloat16);
    Bf16Operand* slot = rows * cols <= kKeptElements ? keptSlot(src, bytes) : nullptr;
    if (!slot && !transient) return nullptr;
    if (!slot) {  // the least recently used transient slot
        slot = &bf16Operands_[0];
        for (size_t i = 1; i < kTransientOperands; ++i)
            if (bf16Operands_[i].lastUse < slot->lastUse) slot = &bf16Operands_[i];
    }
    if (side_) side_->wait(stream_, slot->sideTicket);  // a side product may still read the old copy
    auto* copy = static_cast<__nv_bfloat16*>(ensure(slot->copy, bytes));
    slot->src = slot->home = src;
    slot->rows = rows;
    slot->cols = cols;
    slot->ld = ld;
    slot->lastUse = ++bf16Clock_;
    return copy;
}

CudaBackend::Bf16Operand* CudaBackend::keptSlot(const float* src, size_t bytes) {
    Bf16Operand* const begin = bf16Operands_ + kTransientOperands;
    Bf16Operand *own = nullptr, *emptyFit = nullptr, *unused = nullptr;
    size_t held = 0;
    for (Bf16Operand* o = begin; o != std::end(bf16Operands_); ++o) {
        held += o->copy.bytes;
        const bool fits = o->copy.bytes >= bytes;
        if (fits && o->home == src) own = o;
        if (fits && !o->src && (!emptyFit || o->copy.bytes < emptyFit->copy.bytes)) emptyFit = o;
        if (!o->copy.ptr && !unused) unused = o;
    }
    if (own) return own;
    if (emptyFit) return emptyFit;
    return unused && held + bytes <= kKeptBytes ? unused : nullptr;
}

const float* CudaBackend::widened(const float* x, size_t n, Scratch& scratch) {
    const __nv_bfloat16* x16 = storedBf16(x);
    if (!x16) return x;
    auto* wide = static_cast<float*>(ensure(scratch, n * sizeof(float)));
    to_float_kernel<<<gridFor(n), kThreads, 0, stream_>>>(wide, x16, n);
    CUDA_CHECK_LAUNCH("to_float_kernel");
    return wide;
}

void CudaBackend::narrow(__nv_bfloat16* out, const float* x, size_t n) {
    to_bf16_kernel<<<gridFor(n / 4 + 1), kThreads, 0, stream_>>>(out, x, 1, n, n);
    CUDA_CHECK_LAUNCH("to_bf16_kernel");
}

void CudaBackend::forgetBf16Operands() {
    for (Bf16Operand& o : bf16Operands_) o.src = nullptr;
}

void CudaBackend::forgetBf16OperandsIn(const float* begin, const float* end) {
    for (Bf16Operand& o : bf16Operands_)
        if (o.src && o.src < end && begin < o.src + (o.rows - 1) * o.ld + o.cols) o.src = nullptr;
}

void CudaBackend::forgetBf16OperandsIn(std::initializer_list<Written> ranges) {
    for (const Written& w : ranges)
        if (w.begin && w.count) forgetBf16OperandsIn(w.begin, w.begin + w.count);
}

void CudaBackend::gemmStridedBatched(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha,
                                     const float* A, size_t lda, size_t strideA, const float* B, size_t ldb,
                                     size_t strideB, float beta, float* C, size_t ldc, size_t strideC,
                                     size_t batch) {
    if (M == 0 || N == 0 || batch == 0) return;
    const __nv_bfloat16 *storedA = storedBf16(A), *storedB = storedBf16(B);
    __nv_bfloat16* storedC = storedBf16(C);
    const float* endA = A + (batch - 1) * strideA + ((transA ? K : M) - 1) * lda + (transA ? M : K);
    const float* endB = B + (batch - 1) * strideB + ((transB ? N : K) - 1) * ldb + (transB ? K : N);
    const float* endC = C + (batch - 1) * strideC + (M - 1) * ldc + N;
    if (storedA && storedB) {
        std::string label;
        if (profile_) {
            char buf[112];
            std::snprintf(buf, sizeof buf, "gemm %c%c M=%zu N=%zu K=%zu%s, batch %zu", transA ? 'T' : 'N',
                          transB ? 'T' : 'N', M, N, K, beta != 0.0f ? " +C" : "", batch);
            label = buf;
        }
        ProfScope prof(*this, label);
        const bool side = onSide(true);
        if (side) {
            side_->follow(stream_);
        } else {
            beforeWrites({{C, static_cast<size_t>(endC - C)}});
            beforeRead(A, static_cast<size_t>(endA - A));
            beforeRead(B, static_cast<size_t>(endB - B));
        }
        (side ? *sideLt_ : *lt_)
            .matmul(transB, transA, toInt(N, "N"), toInt(M, "M"), toInt(K, "K"), alpha, storedB, toInt(ldb, "ldb"),
                    storedA, toInt(lda, "lda"), beta, storedC ? static_cast<void*>(storedC) : C,
                    storedC ? static_cast<void*>(storedC) : C, toInt(ldc, "ldc"), storedC ? CUDA_R_16BF : CUDA_R_32F,
                    {toInt(batch, "batch"), static_cast<long long>(strideB), static_cast<long long>(strideA),
                     static_cast<long long>(strideC)});
        if (side) sideIssued({{A, endA, false}, {B, endB, false}, {C, endC, true}}, nullptr, nullptr);
        forgetBf16OperandsIn(C, endC);
        return;
    }
    if (storedA || storedB || storedC) {
        Backend::gemmStridedBatched(transA, transB, M, N, K, alpha, A, lda, strideA, B, ldb, strideB, beta, C, ldc,
                                    strideC, batch);
        return;
    }
    beforeWrites({{C, static_cast<size_t>(endC - C)}});
    beforeRead(A, static_cast<size_t>(endA - A));
    beforeRead(B, static_cast<size_t>(endB - B));
    forgetBf16OperandsIn(C, endC);
    CUBLAS_CHECK(cublasGemmStridedBatchedEx(
        cublas_, transB ? CUBLAS_OP_T : CUBLAS_OP_N, transA ? CUBLAS_OP_T : CUBLAS_OP_N, toInt(N, "N"),
        toInt(M, "M"), toInt(K, "K"), &alpha, B, CUDA_R_32F, toInt(ldb, "ldb"),
        static_cast<long long>(strideB), A, CUDA_R_32F, toInt(lda, "lda"), static_cast<long long>(strideA),
        &beta, C, CUDA_R_32F, toInt(ldc, "ldc"), static_cast<long long>(strideC), toInt(batch, "batch"),
        computeType_, CUBLAS_GEMM_DEFAULT));
}

// ---- reductions and the optimizer -----------------------------------------------------

void CudaBackend::reduce(float* out, const float* x, size_t n, bool squares, bool accumulate) {
    beforeRead(x, n);
    // The number of partials depends on n only: same n, same order, same bits.
    const size_t perBlock = static_cast<size_t>(kThreads) * 8;
    const int blocks = static_cast<int>(std::clamp<size_t>((n + perBlock - 1) / perBlock, 1, kReduceBlocks));
    auto* partials = static_cast<double*>(reducePartials_.ptr);
    if (squares) reduce_partials_kernel<true><<<blocks, kThreads, 0, stream_>>>(partials, x, n);
    else reduce_partials_kernel<false><<<blocks, kThreads, 0, stream_>>>(partials, x, n);
    CUDA_CHECK_LAUNCH("reduce_partials_kernel");
    reduce_finish_kernel<<<1, kThreads, 0, stream_>>>(out, partials, blocks, accumulate ? 1 : 0);
    CUDA_CHECK_LAUNCH("reduce_finish_kernel");
}

void CudaBackend::sum(float* out, const float* x, size_t n) {
    RELORA_OP_WRITES("sum", {out, 1}); reduce(out, x, n, false, false); }

void CudaBackend::sumSquaresAccumulate(float* acc, const float* x, size_t n) {
    RELORA_OP_WRITES("sumSquares", {acc, 1}); reduce(acc, x, n, true, true); }

void CudaBackend::finishGradNorm(float* state, const float* acc, const float* loss, float maxNorm) {
    RELORA_OP("finishGradNorm");
    finish_grad_norm_kernel<<<1, 1, 0, stream_>>>(state, acc, loss, maxNorm);
    CUDA_CHECK_LAUNCH("finish_grad_norm_kernel");
}

void CudaBackend::adamw(float* param, const float* grad, float* m, float* v, size_t n, float lr, float beta1,
                        float beta2, float eps, float weightDecay, int64_t step, const float* state) {
    RELORA_OP_WRITES("adamw", {param, n}, {m, n}, {v, n});
    if (n == 0) return;
    // Bias corrections exactly as the CPU backend computes them.
    const float bc1 = 1.0f - std::pow(beta1, static_cast<float>(step));
    const float bc2 = 1.0f - std::pow(beta2, static_cast<float>(step));
    const float decay = 1.0f - lr * weightDecay;
    adamw_kernel<<<gridFor(n), kThreads, 0, stream_>>>(param, grad, m, v, n, lr, beta1, beta2, eps, decay, bc1,
                                                       bc2, state);
    CUDA_CHECK_LAUNCH("adamw_kernel");
}

namespace {

// A multi-tensor table (tensor_chunks.cuh) as bytes: (count) entries, then
// the (count + 1) chunk prefix, chunksOf(entry) chunks each; *chunks
// receives the number of chunks.
template <typename Entry, typename ChunksOf>
std::vector<unsigned char> chunkedTable(const std::vector<Entry>& entries, long long* chunks, ChunksOf chunksOf) {
    const size_t count = entries.size();
    std::vector<unsigned char> bytes(count * sizeof(Entry) + (count + 1) * sizeof(long long));
    std::memcpy(bytes.data(), entries.data(), count * sizeof(Entry));
    auto* firstChunk = reinterpret_cast<long long*>(bytes.data() + count * sizeof(Entry));
    long long c = 0;
    for (size_t i = 0; i < count; ++i) {
        firstChunk[i] = c;
        c += static_cast<long long>(chunksOf(entries[i]));
    }
    firstChunk[count] = c;
    *chunks = c;
    return bytes;
}

// The same, in chunks of kTensorChunk elements of each entry's n.
template <typename Entry>
std::vector<unsigned char> chunkedTable(const std::vector<Entry>& entries, long long* chunks) {
    return chunkedTable(entries, chunks, [](const Entry& e) { return (e.n + kTensorChunk - 1) / kTensorChunk; });
}

template <typename Entry>
const Entry* tableEntries(const void* table) {
    return static_cast<const Entry*>(table);
}

template <typename Entry>
const long long* tableFirstChunk(const void* table, size_t count) {
    return reinterpret_cast<const long long*>(static_cast<const unsigned char*>(table) + count * sizeof(Entry));
}

}  // namespace

CudaBackend::Bf16Operand* CudaBackend::slotHolding(const float* p, size_t n) {
    for (Bf16Operand& o : bf16Operands_)
        if (o.home && o.ld == o.cols && o.home <= p && p + n <= o.home + o.rows * o.cols) return &o;
    return nullptr;
}

long long CudaBackend::uploadTensorTable(const std::vector<OptimizerTensor>& tensors) {
    std::vector<TensorEntry> entries;
    for (const OptimizerTensor& t : tensors) {
        Bf16Operand* slot = slotHolding(t.param, t.n);
        __nv_bfloat16* copy = slot ? static_cast<__nv_bfloat16*>(slot->copy.ptr) + (t.param - slot->home) : nullptr;
        entries.push_back(
            {t.param, t.grad, t.m, t.v, copy, t.n, t.weightDecay, static_cast<int>(t.step - tensors[0].step)});
    }
    long long chunks = 0;
    uploadIfChanged(tensorTable_, tensorTableHost_, chunkedTable(entries, &chunks));
    tensorTableCount_ = static_cast<int>(tensors.size());
    return chunks;
}

void CudaBackend::uploadIfChanged(Scratch& device, std::vector<unsigned char>& held, std::vector<unsigned char> bytes) {
    if (bytes == held) return;
    uploadBytes(ensure(device, bytes.size()), bytes.data(), bytes.size());
    held = std::move(bytes);
}

void CudaBackend::foldLowRank(const std::vector<LowRankFold>& folds) {
    if (!bf16_ || !std::all_of(folds.begin(), folds.end(), [&](const LowRankFold& f) { return storedBf16(f.target); }))
        return Backend::foldLowRank(folds);
    // Nothing fp32 is written, so no cached operand copy goes stale. The
    // fold touches every group's weights and factors: side-stream work, if
    // any is left (the optimizer's step has waited for it already), ends first.
    joinSide();
    ProfScope prof(*this, "foldLowRank");
    // The factors' bf16 copies: the A blocks of a fold that lie one after
    // the other (a group's stacked A) as one matrix, every B as one. Each
    // goes to a kept slot of the operand cache where one is free, so that
    // the adapters' products later in the step (x·Aᵀ, dy·B) find it instead
    // of converting it again; else to foldFactors_, 16-byte aligned.
    struct Factor {
        const float* src;
        size_t rows, cols;
        __nv_bfloat16* copy;
    };
    struct TermFactors {
        size_t a, aRow, b;  // indices into factors; the term's first row in its A matrix
    };
    std::vector<Factor> factors;
    std::vector<TermFactors> termFactors;
    for (const LowRankFold& f : folds) {
        size_t run = 0;
        const float* runEnd = nullptr;  // one past the A rows of the current run
        for (const LowRankTerm& t : f.terms) {
            TermFactors tf{};
            if (runEnd && t.A == runEnd) {
                tf = {run, factors[run].rows, 0};
                factors[run].rows += t.rank;
            } else {
                run = factors.size();
                tf = {run, 0, 0};
                factors.push_back({t.A, t.rank, f.cols, nullptr});
            }
            runEnd = t.A + t.rank * f.cols;
            tf.b = factors.size();
            factors.push_back({t.B, t.rows, t.rank, nullptr});
            termFactors.push_back(tf);
        }
    }
    const auto aligned = [](size_t n) { return (n + 7) / 8 * 8; };
    size_t spilled = 0;
    for (Factor& f : factors) {
        f.copy = claimBf16Operand(f.src, f.rows, f.cols, f.cols, false);
        if (!f.copy) spilled += aligned(f.rows * f.cols);
    }
    auto* spill = static_cast<__nv_bfloat16*>(ensure(foldFactors_, spilled * sizeof(__nv_bfloat16)));
    std::vector<NarrowEntry> narrows;
    for (Factor& f : factors) {
        if (!f.copy) {
            f.copy = spill;
            spill += aligned(f.rows * f.cols);
        }
        narrows.push_back({f.copy, f.src, f.rows * f.cols});
    }
    // Per term a segment of the fold kernel; the rows no term covers (a
    // group's part without an adapter) are narrowed with the factors.
    std::vector<FoldSegment> segments;
    size_t term = 0;
    for (const LowRankFold& f : folds) {
        requireFp32(f.base, "foldLowRank");
        __nv_bfloat16* target = storedBf16(f.target);
        std::vector<std::pair<size_t, size_t>> covered;  // row ranges [begin, end)
        for (const LowRankTerm& t : f.terms) {
            const TermFactors& tf = termFactors[term++];
            segments.push_back({target + t.rowOffset * f.cols, f.base + t.rowOffset * f.cols, factors[tf.b].copy,
                                factors[tf.a].copy + tf.aRow * f.cols, toInt(t.rows, "rows"), toInt(f.cols, "cols"),
                                toInt(t.rank, "rank"), t.scale});
            covered.emplace_back(t.rowOffset, t.rowOffset + t.rows);
        }
        std::sort(covered.begin(), covered.end());
        size_t row = 0;
        for (const auto& [begin, end] : covered) {
            if (begin < row) throw std::logic_error("foldLowRank: two terms add onto the same rows");
            if (begin > row) narrows.push_back({target + row * f.cols, f.base + row * f.cols, (begin - row) * f.cols});
            row = end;
        }
        if (row < f.rows) narrows.push_back({target + row * f.cols, f.base + row * f.cols, (f.rows - row) * f.cols});
    }
    long long chunks = 0;
    uploadIfChanged(foldTable_, foldTableHost_, chunkedTable(narrows, &chunks));
    multi_to_bf16_kernel<<<static_cast<unsigned>(std::min<long long>(chunks, kMaxGridBlocks)), kThreads, 0, stream_>>>(
        tableEntries<NarrowEntry>(foldTable_.ptr), tableFirstChunk<NarrowEntry>(foldTable_.ptr, narrows.size()),
        static_cast<int>(narrows.size()), chunks);
    CUDA_CHECK_LAUNCH("multi_to_bf16_kernel");
    if (segments.empty()) return;
    long long tiles = 0;
    uploadIfChanged(foldSegments_, foldSegmentsHost_,
                    chunkedTable(segments, &tiles, [](const FoldSegment& s) { return foldTiles(s.rows, s.cols); }));
    fold_low_rank_kernel<<<static_cast<unsigned>(tiles), Fold::kThreads, Fold::kSharedBytes, stream_>>>(
        tableEntries<FoldSegment>(foldSegments_.ptr), tableFirstChunk<FoldSegment>(foldSegments_.ptr, segments.size()),
        static_cast<int>(segments.size()));
    CUDA_CHECK_LAUNCH("fold_low_rank_kernel");
}

void CudaBackend::sumSquaresAccumulateAll(float* acc, const std::vector<OptimizerTensor>& tensors) {
    RELORA_OP("sumSquaresAll");
    if (tensors.empty()) return;
    const long long chunks = uploadTensorTable(tensors);
    auto* partials = static_cast<double*>(ensure(tensorPartials_, static_cast<size_t>(chunks) * sizeof(double)));
    const unsigned blocks = static_cast<unsigned>(std::min<long long>(chunks, kMaxGridBlocks));
    multi_sum_squares_kernel<<<blocks, kThreads, 0, stream_>>>(
        partials, tableEntries<TensorEntry>(tensorTable_.ptr), tableFirstChunk<TensorEntry>(tensorTable_.ptr, tensorTableCount_),
        tensorTableCount_, chunks);
    CUDA_CHECK_LAUNCH("multi_sum_squares_kernel");
    reduce_finish_kernel<<<1, kThreads, 0, stream_>>>(acc, partials, static_cast<int>(chunks), 1);
    CUDA_CHECK_LAUNCH("reduce_finish_kernel");
}

void CudaBackend::adamwAll(const std::vector<OptimizerTensor>& tensors, const AdamWSettings& s,
                           const float* state) {
    RELORA_OP("adamwAll");
    if (tensors.empty()) return;
    const long long chunks = uploadTensorTable(tensors);
    const unsigned blocks = static_cast<unsigned>(std::min<long long>(chunks, kMaxGridBlocks));
    multi_adamw_kernel<<<blocks, kThreads, 0, stream_>>>(
        tableEntries<TensorEntry>(tensorTable_.ptr), tableFirstChunk<TensorEntry>(tensorTable_.ptr, tensorTableCount_), tensorTableCount_,
        chunks, tensors[0].step, s.lr, s.beta1, s.beta2, s.eps, state);
    CUDA_CHECK_LAUNCH("multi_adamw_kernel");
    // A slot whose whole source the kernel rewrote into its copy (every part
    // of a fused weight trains) holds that source's bf16 values again.
    std::map<Bf16Operand*, size_t> rewritten;
    for (const OptimizerTensor& t : tensors)
        if (Bf16Operand* slot = slotHolding(t.param, t.n)) rewritten[slot] += t.n;
    for (const auto& [slot, count] : rewritten) {
        if (count != slot->rows * slot->cols) continue;
        slot->src = slot->home;
        slot->lastUse = ++bf16Clock_;
    }
}

void CudaBackend::zeroWhereZero(float* x, const float* ref, size_t n) {
    RELORA_OP_WRITES("zeroWhereZero", {x, n});
    if (n == 0) return;
    zero_where_zero_kernel<<<gridFor(n), kThreads, 0, stream_>>>(x, ref, n);
    CUDA_CHECK_LAUNCH("zero_where_zero_kernel");
}

void CudaBackend::pruneMagnitude(float* x, size_t n, float p) { pruneMagnitudeAll({{x, n}}, p); }

void CudaBackend::pruneMagnitudeAll(const std::vector<TensorRef>& tensors, float p) {
    RELORA_OP("pruneMagnitudeAll");
    // Groups of up to kGroup elements bound the sort's scratch (two 64-bit
    // keys per element); a larger tensor is a group of its own.
    constexpr size_t kGroup = size_t{4} << 20;
    for (size_t first = 0; first < tensors.size();) {
        std::vector<PruneEntry> group;
        size_t total = 0;
        for (; first < tensors.size() && (group.empty() || total + tensors[first].n <= kGroup); ++first) {
            const TensorRef& t = tensors[first];
            if (t.n == 0) continue;
            // The CPU backend's quantile position, in the same double arithmetic.
            const double pos = static_cast<double>(p) * static_cast<double>(t.n - 1);
            const size_t lo = static_cast<size_t>(std::floor(pos));
            group.push_back({t.data, t.n, total, lo, std::min(lo + 1, t.n - 1), pos - static_cast<double>(lo)});
            total += t.n;
        }
        if (group.empty()) continue;
        if (total > static_cast<size_t>(INT_MAX) || group.size() > (size_t{1} << 20))
            throw std::runtime_error("pruneMagnitude: tensors too large to sort at once");
        long long chunks = 0;
        const std::vector<unsigned char> bytes = chunkedTable(group, &chunks);
        void* table = ensure(pruneTable_, bytes.size());
        uploadBytes(table, bytes.data(), bytes.size());
        const PruneEntry* entries = tableEntries<PruneEntry>(table);
        const long long* firstChunk = tableFirstChunk<PruneEntry>(table, group.size());
        auto* keys = static_cast<unsigned long long*>(ensure(pruneKeys_, total * sizeof(unsigned long long)));
        auto* sorted = static_cast<unsigned long long*>(ensure(pruneSorted_, total * sizeof(unsigned long long)));
        const int count = static_cast<int>(group.size());
        const unsigned blocks = static_cast<unsigned>(std::min<long long>(chunks, kMaxGridBlocks));
        magnitude_keys_kernel<<<blocks, kThreads, 0, stream_>>>(keys, entries, firstChunk, count, chunks);
        CUDA_CHECK_LAUNCH("magnitude_keys_kernel");
        // Only the bits in use: 32 of magnitude and enough for the tensor index.
        int endBit = 32;
        while ((size_t{1} << (endBit - 32)) < group.size()) ++endBit;
        size_t tempBytes = 0;
        CUDA_CHECK(cub::DeviceRadixSort::SortKeys(nullptr, tempBytes, keys, sorted, static_cast<int>(total), 0,
                                                  endBit, stream_));
        void* temp = ensure(pruneTemp_, tempBytes);
        CUDA_CHECK(cub::DeviceRadixSort::SortKeys(temp, tempBytes, keys, sorted, static_cast<int>(total), 0, endBit,
                                                  stream_));
        prune_magnitude_kernel<<<blocks, kThreads, 0, stream_>>>(entries, firstChunk, count, chunks, sorted);
        CUDA_CHECK_LAUNCH("prune_magnitude_kernel");
    }
}

// ---- analysis ------------------------------------------------------------------------

std::vector<float> CudaBackend::singularValues(const float* a, size_t rows, size_t cols) {
    queueSingularValues({{a, rows, cols}});
    return takeSingularValues(true)->front();
}

void CudaBackend::queueSingularValues(const std::vector<MatrixRef>& matrices) {
    RELORA_OP("queueSingularValues");
    // σ_i(M) = sqrt(λ_i(G)) with G = MᵀM or MMᵀ, whichever is n × n with
    // n = min(rows, cols). In fp64, λ keeps about 16 digits of σ_max², so σ
    // down to ~1e-7·σ_max comes out as accurately as fp32 data allows. The
    // Gram matrices are made here, in stream order (so the caller may reuse
    // the matrices); their eigenvalues are left to the spectra worker.
    if (!spectraWorker_) spectraWorker_ = std::make_unique<SpectraWorker>(device_);
    std::map<size_t, std::vector<size_t>> byWidth;
    for (size_t i = 0; i < matrices.size(); ++i) {
        queuedSpectra_.push_back({matrices[i].rows, matrices[i].cols, 0, 0});
        if (matrices[i].rows && matrices[i].cols)
            byWidth[std::min(matrices[i].rows, matrices[i].cols)].push_back(i);
    }
    const size_t firstQueued = queuedSpectra_.size() - matrices.size();
    for (const auto& [n, group] : byWidth) {
        const size_t batch = spectraBatches_++;
        if (spectraGrams_.size() <= batch) {
            spectraGrams_.emplace_back();
            cudaEvent_t ready = nullptr;
            CUDA_CHECK(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming));
            spectraReady_.push_back(ready);
        }
        auto* gram = static_cast<double*>(ensure(spectraGrams_[batch], group.size() * n * n * sizeof(double)));
        for (size_t k = 0; k < group.size(); ++k) {
            const MatrixRef& m = matrices[group[k]];
            const size_t count = m.rows * m.cols;
            auto* data = static_cast<double*>(ensure(spectraDouble_, count * sizeof(double)));
            to_double_kernel<<<gridFor(count), kThreads, 0, stream_>>>(data, m.data, count);
            CUDA_CHECK_LAUNCH("to_double_kernel");
            // Column-major, the row-major (rows, cols) matrix is Mc = Mᵀ (cols, rows), ld = cols:
            // G = Mc·Mcᵀ (cols, cols) when cols <= rows, else Mcᵀ·Mc (rows, rows).
            const double one = 1.0, zero = 0.0;
            const bool wide = m.rows < m.cols;
            const int ni = toInt(n, "n"), ki = toInt(wide ? m.cols : m.rows, "k"), ld = toInt(m.cols, "ld");
            CUBLAS_CHECK(cublasDgemm(cublas_, wide ? CUBLAS_OP_T : CUBLAS_OP_N, wide ? CUBLAS_OP_N : CUBLAS_OP_T,
                                     ni, ni, ki, &one, data, ld, data, ld, &zero, gram + k * n * n, ni));
            queuedSpectra_[firstQueued + group[k]] = {m.rows, m.cols, batch, k};
        }
        CUDA_CHECK(cudaEventRecord(spectraReady_[batch], stream_));
        spectraWorker_->submit(gram, n, group.size(), spectraReady_[batch]);
    }
}

std::optional<std::vector<std::vector<float>>> CudaBackend::takeSingularValues(bool wait) {
    if (spectraWorker_ && !wait && !spectraWorker_->idle()) return std::nullopt;
    const std::vector<QueuedSpectrum> queued = std::exchange(queuedSpectra_, {});
    spectraBatches_ = 0;
    std::vector<std::vector<double>> eigenvalues;
    if (spectraWorker_) eigenvalues = spectraWorker_->collect();
    std::vector<std::vector<float>> out;
    for (const QueuedSpectrum& q : queued) {
        std::vector<float>& sigma = out.emplace_back();
        const size_t n = std::min(q.rows, q.cols);
        if (n == 0) continue;
        const double* lambda = eigenvalues.at(q.batch).data() + q.index * n;
        sigma.resize(n);
        for (size_t j = 0; j < n; ++j)  // eigenvalues ascend, σ descend
            sigma[j] = static_cast<float>(std::sqrt(std::max(lambda[n - 1 - j], 0.0)));
        if (!std::all_of(sigma.begin(), sigma.end(), [](float v) { return std::isfinite(v); }))
            throw std::runtime_error("singular values: the " + std::to_string(q.rows) + "x" +
                                     std::to_string(q.cols) + " matrix has non-finite entries");
    }
    return out;
}

}  // namespace relora::gpu
