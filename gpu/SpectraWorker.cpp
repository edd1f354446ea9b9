#include "gpu/SpectraWorker.h"

#include "gpu/CudaCheck.h"

#include <string>

namespace relora::gpu {

SpectraWorker::SpectraWorker(int device) : device_(device) {
    CUDA_CHECK(cudaSetDevice(device_));
    // The lowest priority: the eigensolver takes only SMs training leaves idle.
    int leastPriority = 0, greatestPriority = 0;
    CUDA_CHECK(cudaDeviceGetStreamPriorityRange(&leastPriority, &greatestPriority));
    CUDA_CHECK(cudaStreamCreateWithPriority(&stream_, cudaStreamNonBlocking, leastPriority));
    CUSOLVER_CHECK(cusolverDnCreate(&handle_));
    CUSOLVER_CHECK(cusolverDnSetStream(handle_, stream_));
    CUSOLVER_CHECK(cusolverDnCreateParams(&params_));
    thread_ = std::thread([this] { run(); });
}

SpectraWorker::~SpectraWorker() {
    {
        std::lock_guard<std::mutex> lock(mutex_);
        stopping_ = true;
    }
    changed_.notify_all();
    thread_.join();
    if (deviceWork_) cudaFree(deviceWork_);
    if (params_) cusolverDnDestroyParams(params_);
    if (handle_) cusolverDnDestroy(handle_);
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
    const auto n = static_cast<int64_t>(b.n), count = static_cast<int64_t>(b.count);
    CUDA_CHECK(cudaStreamWaitEvent(stream_, b.ready, 0));
    size_t solverBytes = 0, hostBytes = 0;
    // The values land in deviceWork_ first: (count, n) doubles, then (count) infos, then the solver's workspace.
    const size_t valueBytes = b.count * b.n * sizeof(double), infoBytes = (b.count * sizeof(int) + 255) / 256 * 256;
    CUSOLVER_CHECK(cusolverDnXsyevBatched_bufferSize(handle_, params_, CUSOLVER_EIG_MODE_NOVECTOR,
                                                     CUBLAS_FILL_MODE_LOWER, n, CUDA_R_64F, b.gram, n, CUDA_R_64F,
                                                     nullptr, CUDA_R_64F, &solverBytes, &hostBytes, count));
    const size_t valueSpace = (valueBytes + 255) / 256 * 256;
    const size_t need = valueSpace + infoBytes + solverBytes;
    if (need > deviceWorkBytes_) {
        if (deviceWork_) CUDA_CHECK(cudaFree(deviceWork_));
        deviceWork_ = nullptr;
        deviceWorkBytes_ = 0;
        CUDA_CHECK(cudaMalloc(&deviceWork_, need));
        deviceWorkBytes_ = need;
    }
    auto* base = static_cast<unsigned char*>(deviceWork_);
    auto* values = reinterpret_cast<double*>(base);
    auto* info = reinterpret_cast<int*>(base + valueSpace);
    void* solverWork = base + valueSpace + infoBytes;
    if (hostWork_.size() < hostBytes) hostWork_.resize(hostBytes);
    CUSOLVER_CHECK(cusolverDnXsyevBatched(handle_, params_, CUSOLVER_EIG_MODE_NOVECTOR, CUBLAS_FILL_MODE_LOWER, n,
                                          CUDA_R_64F, const_cast<double*>(b.gram), n, CUDA_R_64F, values,
                                          CUDA_R_64F, solverWork, solverBytes, hostWork_.data(), hostBytes, info,
                                          count));
    std::vector<double> out(b.count * b.n);
    std::vector<int> infos(b.count);
    CUDA_CHECK(cudaMemcpyAsync(out.data(), values, valueBytes, cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaMemcpyAsync(infos.data(), info, b.count * sizeof(int), cudaMemcpyDeviceToHost, stream_));
    CUDA_CHECK(cudaStreamSynchronize(stream_));
    for (size_t k = 0; k < b.count; ++k)
        if (infos[k] != 0)
            throw std::runtime_error("cuSOLVER syevBatched failed on Gram matrix " + std::to_string(k) + " of a batch (info = " +
                                     std::to_string(infos[k]) + ")");
    return out;
}

}  // namespace relora::gpu
