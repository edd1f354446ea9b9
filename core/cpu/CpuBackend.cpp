// CpuBackend: memory, BLAS products, element-wise kernels, optimizer and
// analysis on the host. Attention lives in CpuAttention.cpp.
#include "core/cpu/CpuBackend.h"

#include "core/CounterRng.h"
#include "core/RankMetrics.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <new>
#include <stdexcept>
#include <vector>

namespace relora {
namespace {

// Each allocation carries its size in a cache line in front of it, so
// release() can keep the memory statistics without a lookup table.
constexpr size_t kHeader = 64;

void* allocateZeroed(size_t bytes) {
    const size_t total = (kHeader + bytes + 63) / 64 * 64;
    auto* base = static_cast<unsigned char*>(std::aligned_alloc(64, total));
    if (!base) throw std::bad_alloc();
    std::memset(base, 0, total);
    *reinterpret_cast<size_t*>(base) = bytes;
    return base + kHeader;
}

std::string cpuModelName() {
    std::ifstream in("/proc/cpuinfo");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("model name", 0) == 0) {
            const auto colon = line.find(':');
            if (colon != std::string::npos) return line.substr(colon + 2);
        }
    }
    return "CPU";
}

}  // namespace

int defaultCpuThreads() {
    // OMP_NUM_THREADS read here rather than omp_get_max_threads(), which
    // a backend's omp_set_num_threads changes for the thread that made it.
    if (const char* env = std::getenv("OMP_NUM_THREADS")) {
        const int n = std::atoi(env);  // the first entry of a list such as "4,2"
        if (n > 0) return n;
    }
    return omp_get_num_procs();
}

CpuBackend::CpuBackend(int threads) : threads_(threads > 0 ? threads : defaultCpuThreads()) {
    omp_set_num_threads(threads_);
    openblas_set_num_threads(threads_);
}

CpuBackend::~CpuBackend() = default;

std::string CpuBackend::deviceName() const {
    return cpuModelName() + " (" + std::to_string(threads_) + " threads)";
}

float* CpuBackend::allocate(size_t count) {
    auto* p = static_cast<float*>(allocateZeroed(count * sizeof(float)));
    peakBytes_ = std::max(peakBytes_, liveBytes_ += count * sizeof(float));
    return p;
}

int32_t* CpuBackend::allocateInts(size_t count) {
    auto* p = static_cast<int32_t*>(allocateZeroed(count * sizeof(int32_t)));
    peakBytes_ = std::max(peakBytes_, liveBytes_ += count * sizeof(int32_t));
    return p;
}

void CpuBackend::release(void* ptr) {
    if (!ptr) return;
    auto* base = static_cast<unsigned char*>(ptr) - kHeader;
    liveBytes_ -= *reinterpret_cast<size_t*>(base);
    std::free(base);
}

void CpuBackend::upload(float* dst, const float* host, size_t count) {
    std::memcpy(dst, host, count * sizeof(float));
}
void CpuBackend::uploadInts(int32_t* dst, const int32_t* host, size_t count) {
    std::memcpy(dst, host, count * sizeof(int32_t));
}
void CpuBackend::download(float* host, const float* src, size_t count) {
    std::memcpy(host, src, count * sizeof(float));
}
void CpuBackend::downloadInts(int32_t* host, const int32_t* src, size_t count) {
    std::memcpy(host, src, count * sizeof(int32_t));
}
void CpuBackend::copy(float* dst, const float* src, size_t count) {
    std::memcpy(dst, src, count * sizeof(float));
}

void CpuBackend::fill(float* x, float value, size_t count) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < count; ++i) x[i] = value;
}

void CpuBackend::gemm(bool transA, bool transB, size_t M, size_t N, size_t K, float alpha,
                      const float* A, size_t lda, const float* B, size_t ldb, float beta,
                      float* C, size_t ldc) {
    cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans,
                transB ? CblasTrans : CblasNoTrans, static_cast<blasint>(M),
                static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
                static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C,
                static_cast<blasint>(ldc));
}

void CpuBackend::axpy(float* y, float alpha, const float* x, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) y[i] += alpha * x[i];
}

void CpuBackend::scale(float* x, float alpha, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) x[i] *= alpha;
}

void CpuBackend::fillNormal(float* x, size_t n, float stddev, uint64_t seed) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) x[i] = stddev * standardNormal(seed, i);
}

void CpuBackend::fillUniform(float* x, size_t n, float bound, uint64_t seed) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) x[i] = bound * (2.0f * uniform01(seed, i) - 1.0f);
}

void CpuBackend::dropoutMask(float* mask, size_t n, float p, uint64_t seed) {
    const float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) mask[i] = uniform01(seed, i) >= p ? keep : 0.0f;
}

void CpuBackend::multiply(float* out, const float* a, const float* b, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) out[i] = a[i] * b[i];
}

void CpuBackend::embeddingForward(float* out, const int32_t* tokens, const float* table,
                                  size_t N, size_t C) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; ++n)
        std::memcpy(out + n * C, table + static_cast<size_t>(tokens[n]) * C, C * sizeof(float));
}

void CpuBackend::embeddingBackward(float* dtable, const float* dout, const int32_t* tokens,
                                   size_t N, size_t C, size_t /*V*/) {
    // Split by columns so threads never add into the same row element.
#pragma omp parallel
    {
        const size_t nt = static_cast<size_t>(omp_get_num_threads());
        const size_t t = static_cast<size_t>(omp_get_thread_num());
        const size_t c0 = C * t / nt, c1 = C * (t + 1) / nt;
        for (size_t n = 0; n < N; ++n) {
            float* row = dtable + static_cast<size_t>(tokens[n]) * C;
            const float* g = dout + n * C;
            for (size_t c = c0; c < c1; ++c) row[c] += g[c];
        }
    }
}

void CpuBackend::rmsnormForward(float* out, float* rstd, const float* x, const float* w,
                                size_t N, size_t C, float eps) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; ++n) {
        const float* xr = x + n * C;
        float ss = 0.0f;
        for (size_t c = 0; c < C; ++c) ss += xr[c] * xr[c];
        const float r = 1.0f / std::sqrt(ss / static_cast<float>(C) + eps);
        rstd[n] = r;
        float* o = out + n * C;
        for (size_t c = 0; c < C; ++c) o[c] = xr[c] * r * w[c];
    }
}

void CpuBackend::rmsnormBackward(float* dx, float* dw, const float* dout, const float* x,
                                 const float* w, const float* rstd, size_t N, size_t C) {
    const int nt = omp_get_max_threads();
    std::vector<float> partial(static_cast<size_t>(nt) * C, 0.0f);
#pragma omp parallel
    {
        float* dwLocal = partial.data() + static_cast<size_t>(omp_get_thread_num()) * C;
#pragma omp for schedule(static)
        for (size_t n = 0; n < N; ++n) {
            const float* xr = x + n * C;
            const float* g = dout + n * C;
            const float r = rstd[n];
            float dot = 0.0f;  // Σ g_i w_i x_i
            for (size_t c = 0; c < C; ++c) dot += g[c] * w[c] * xr[c];
            const float k = r * r * r * dot / static_cast<float>(C);
            float* d = dx + n * C;
            for (size_t c = 0; c < C; ++c) {
                d[c] += r * w[c] * g[c] - k * xr[c];
                dwLocal[c] += g[c] * xr[c] * r;
            }
        }
    }
    for (int t = 0; t < nt; ++t)
        for (size_t c = 0; c < C; ++c) dw[c] += partial[static_cast<size_t>(t) * C + c];
}

void CpuBackend::swigluForward(float* out, const float* gu, size_t N, size_t F) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; ++n) {
        const float* g = gu + n * 2 * F;
        const float* u = g + F;
        float* o = out + n * F;
        for (size_t f = 0; f < F; ++f) o[f] = g[f] / (1.0f + std::exp(-g[f])) * u[f];
    }
}

void CpuBackend::swigluBackward(float* dgu, const float* dout, const float* gu, size_t N,
                                size_t F, float* out) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; ++n) {
        const float* g = gu + n * 2 * F;
        const float* u = g + F;
        const float* d = dout + n * F;
        float* dg = dgu + n * 2 * F;
        float* du = dg + F;
        for (size_t f = 0; f < F; ++f) {
            const float sig = 1.0f / (1.0f + std::exp(-g[f]));
            const float silu = g[f] * sig;
            dg[f] = d[f] * u[f] * sig * (1.0f + g[f] * (1.0f - sig));
            du[f] = d[f] * silu;
        }
        if (out)  // exactly as swigluForward computes it
            for (size_t f = 0; f < F; ++f) out[n * F + f] = g[f] / (1.0f + std::exp(-g[f])) * u[f];
    }
}

void CpuBackend::crossEntropy(float* dlogits, float* losses, const float* logits,
                              const int32_t* targets, size_t N, size_t V, float gradScale) {
#pragma omp parallel for schedule(static)
    for (size_t n = 0; n < N; ++n) {
        const float* z = logits + n * V;
        float mx = z[0];
        for (size_t v = 1; v < V; ++v) mx = std::max(mx, z[v]);
        float s = 0.0f;
        for (size_t v = 0; v < V; ++v) s += std::exp(z[v] - mx);
        const float lse = mx + std::log(s);
        const size_t t = static_cast<size_t>(targets[n]);
        losses[n] = lse - z[t];
        if (!dlogits) continue;
        float* d = dlogits + n * V;
        for (size_t v = 0; v < V; ++v) d[v] = std::exp(z[v] - lse) * gradScale;
        d[t] -= gradScale;
    }
}

namespace {

// Sums in double over fixed per-thread ranges, combined in thread order:
// the same result on every run (OpenMP's reduction clause combines in
// arrival order, which would make resumed runs differ in the last bit).
template <typename Term>
double deterministicSum(size_t n, Term term) {
    const int nt = omp_get_max_threads();
    std::vector<double> partial(static_cast<size_t>(nt), 0.0);
#pragma omp parallel num_threads(nt)
    {
        const size_t t = static_cast<size_t>(omp_get_thread_num());
        const size_t count = static_cast<size_t>(omp_get_num_threads());
        const size_t i0 = n * t / count, i1 = n * (t + 1) / count;
        double s = 0.0;
        for (size_t i = i0; i < i1; ++i) s += term(i);
        partial[t] = s;
    }
    double total = 0.0;
    for (double p : partial) total += p;
    return total;
}

}  // namespace

void CpuBackend::sum(float* out, const float* x, size_t n) {
    out[0] = static_cast<float>(deterministicSum(n, [x](size_t i) { return double(x[i]); }));
}

void CpuBackend::sumSquaresAccumulate(float* acc, const float* x, size_t n) {
    acc[0] += static_cast<float>(deterministicSum(n, [x](size_t i) { return double(x[i]) * x[i]; }));
}

void CpuBackend::finishGradNorm(float* state, const float* acc, const float* loss,
                                float maxNorm) {
    const float norm = std::sqrt(acc[0]);
    state[0] = norm;
    state[1] = maxNorm > 0.0f ? std::min(1.0f, maxNorm / (norm + 1e-6f)) : 1.0f;
    state[2] = std::isfinite(norm) && std::isfinite(loss[0]) ? 0.0f : 1.0f;
}

void CpuBackend::adamw(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                       float beta1, float beta2, float eps, float weightDecay, int64_t step,
                       const float* state) {
    if (state[2] != 0.0f) return;
    const float clip = state[1];
    const float bc1 = 1.0f - std::pow(beta1, static_cast<float>(step));
    const float bc2 = 1.0f - std::pow(beta2, static_cast<float>(step));
    const float decay = 1.0f - lr * weightDecay;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i) {
        const float g = grad[i] * clip;
        m[i] = beta1 * m[i] + (1.0f - beta1) * g;
        v[i] = beta2 * v[i] + (1.0f - beta2) * g * g;
        const float mhat = m[i] / bc1;
        const float vhat = v[i] / bc2;
        param[i] = param[i] * decay - lr * mhat / (std::sqrt(vhat) + eps);
    }
}

void CpuBackend::pruneRandom(float* x, size_t n, float p, uint64_t seed) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i)
        if (uniform01(seed, i) < p) x[i] = 0.0f;
}

void CpuBackend::pruneMagnitude(float* x, size_t n, float p) {
    if (n == 0) return;
    // p-quantile of |x| with linear interpolation between order statistics
    // (the definition torch.quantile and numpy use).
    std::vector<float> mag(x, x + n);
    for (auto& a : mag) a = std::fabs(a);
    const double pos = static_cast<double>(p) * static_cast<double>(n - 1);
    const size_t lo = static_cast<size_t>(std::floor(pos));
    const size_t hi = std::min(lo + 1, n - 1);
    std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(lo), mag.end());
    const float qlo = mag[lo];
    const float qhi = hi == lo ? qlo
                               : *std::min_element(mag.begin() + static_cast<std::ptrdiff_t>(lo) + 1, mag.end());
    const float q = static_cast<float>(qlo + (pos - static_cast<double>(lo)) * (qhi - qlo));
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i)
        if (std::fabs(x[i]) <= q) x[i] = 0.0f;
}

void CpuBackend::zeroWhereZero(float* x, const float* ref, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; ++i)
        if (ref[i] == 0.0f) x[i] = 0.0f;
}

std::vector<float> CpuBackend::singularValues(const float* a, size_t rows, size_t cols) {
    return singularValuesHost(a, rows, cols);
}

}  // namespace relora
