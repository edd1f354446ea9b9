#include "gpu/SpectraWorker.h"

#include "gpu/CudaCheck.h"

#include <cblas.h>  // OpenBLAS's openblas_get_parallel, openblas_set_num_threads
#include <lapacke.h>
#include <omp.h>

#include <stdexcept>
#include <string>
#include <utility>

#include <sys/resource.h>
#include <unistd.h>

namespace relora::gpu {
namespace {
constexpr int kSolverNice = 10;
}  // namespace

SpectraWorker::SpectraWorker(int device) : device_(device) {
    // All cores but two: the training thread keeps one, the rest of the
    // process (the store's writer thread, the GUI) the other.
    const unsigned cores = std::thread::hardware_concurrency();  // 0 when unknown
    solverThreads_ = cores > 3 ? static_cast<int>(cores - 2) : 1;
    CUDA_CHECK(cudaSetDevice(device_));
    CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    thread_ = std::thread([this] { run(); });
}

SpectraWorker::~SpectraWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
    if (hostGram_) cudaFreeHost(hostGram_);
    if (stream_) cudaStreamDestroy(stream_);
}

void SpectraWorker::submit(const double* gram, size_t n, size_t count, cudaEvent_t ready) {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        queue_.push_back({gram, n, count, ready});
    }
    changed_.notify_all();
}

bool SpectraWorker::idle() {
    std::lock_guard<std::mutex> lock(mutex_);
    return queue_.empty() && running_ == 0;
}

std::vector<std::vector<double>> SpectraWorker::collect() {
    std::unique_lock<std::mutex> lock(mutex_);
    changed_.wait(lock, [this] { return queue_.empty() && running_ == 0; });
    std::vector<std::vector<double>> out = std::move(done_);
    done_.clear();
    if (error_) std::rethrow_exception(std::exchange(error_, nullptr));
    return out;
}

void SpectraWorker::run() {
    cudaSetDevice(device_);
    // Below the training thread's priority (the OpenMP team this thread
    // starts inherits its nice value): the solvers take the CPU time that
    // the training loop's launches leave, rather than delay them.
    setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kSolverNice);
    // The size of this thread's OpenMP teams; other threads keep theirs.
    omp_set_num_threads(solverThreads_);
    std::unique_lock<std::mutex> lock(mutex_);
    for (;;) {
        changed_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) return;  // stopping, nothing left
        const Batch batch = queue_.front();
        queue_.pop_front();
        running_ = 1;
        lock.unlock();
        std::vector<double> values;
        std::exception_ptr failure;
        try {
            values = eigenvalues(batch);
        } catch (...) {
            failure = std::current_exception();
        }
        lock.lock();
        if (failure && !error_) error_ = failure;
        done_.push_back(std::move(values));
        running_ = 0;
        changed_.notify_all();
    }
}

std::vector<double> SpectraWorker::eigenvalues(const Batch& b) {
    const size_t matrixSize = b.n * b.n, total = b.count * matrixSize;
    // Allocating pinned memory stalls the device's other streams (a kernel
    // chain on one lost 9 ms to it): the buffer is kept and only ever grows.
    if (total > hostGramCount_) {
        if (hostGram_) CUDA_CHECK(cudaFreeHost(hostGram_));
        hostGram_ = nullptr;
        hostGramCount_ = 0;
        CUDA_CHECK(cudaMallocHost(&hostGram_, total * sizeof(double)));
        hostGramCount_ = total;
    }
    CUDA_CHECK(cudaStreamWaitEvent(stream_, b.ready, 0));
    CUDA_CHECK(cudaMemcpyAsync(hostGram_, b.gram, total * sizeof(double), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));

    // Eigenvalues only, dsyev, dsyevd and dsyevr all reduce the matrix to
    // tridiagonal form (dsytrd, O(n³): nearly all of the time) and finish
    // with dsterf (O(n²)): on the H100 machine's host they measured the same
    // for n = 512..2048, the two-stage reduction (dsyevd_2stage) 1.1-1.5x
    // slower for n <= 1024. Each call runs on one thread and the matrices of
    // the batch in parallel: threading each call instead took 25 times as
    // long (56 matrices of 512: 8.9 s against 0.35 s). OpenBLAS's OpenMP
    // build (Debian's libopenblas0-openmp, which the top-level CMakeLists.txt
    // prefers) runs a call serially inside a parallel region of several
    // threads, and in a team of one too, since run() then set this thread's
    // omp_get_max_threads() to 1. Its pthread build has only a process-wide
    // thread count, which must then be 1.
    if (openblas_get_parallel() == OPENBLAS_THREAD) openblas_set_num_threads(1);
    const auto n = static_cast<lapack_int>(b.n);  // fits: cuBLAS made the matrices with an int n
    std::vector<double> values(b.count * b.n);
    std::vector<lapack_int> infos(b.count);
#pragma omp parallel for schedule(dynamic)
    for (size_t k = 0; k < b.count; ++k)
        infos[k] = LAPACKE_dsyevd(LAPACK_COL_MAJOR, 'N', 'L', n, hostGram_ + k * matrixSize, n,
                                  values.data() + k * b.n);
    for (size_t k = 0; k < b.count; ++k)
        if (infos[k] != 0)
            throw std::runtime_error("LAPACK dsyevd failed on Gram matrix " + std::to_string(k) + " (" +
                                     std::to_string(b.n) + "x" + std::to_string(b.n) + ") of a batch of " +
                                     std::to_string(b.count) + " (info = " + std::to_string(infos[k]) +
                                     (infos[k] == -5 ? ": it holds a NaN" : "") + ")");
    return values;
}

}  // namespace relora::gpu
