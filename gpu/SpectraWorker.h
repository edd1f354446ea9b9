// SpectraWorker: eigenvalues of batches of symmetric fp64 matrices (the Gram
// matrices of ΔW, see CudaBackend::queueSingularValues) on a host thread of
// its own, so that the spectra of an evaluation are computed while training
// goes on, instead of stalling it for hundreds of milliseconds (issue 6:
// measurements cost at most 3 % of training). The eigenvalues come from
// LAPACK on the host's cores: cuSOLVER's eigensolver on the GPU took SMs from
// training. The GPU only copies the matrices to the host, on a copy engine.
// Host code only; internal to gpu/.
#pragma once

#include <cuda_runtime.h>

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace relora::gpu {

class SpectraWorker {
public:
    explicit SpectraWorker(int device);
    ~SpectraWorker();  // waits for the submitted work
    SpectraWorker(const SpectraWorker&) = delete;
    SpectraWorker& operator=(const SpectraWorker&) = delete;

    // Eigenvalues of gram(count, n, n) (device, column-major, symmetric),
    // computed once `ready` (an event on the producer's stream) has fired.
    // gram must stay untouched until collect() has returned.
    void submit(const double* gram, size_t n, size_t count, cudaEvent_t ready);
    // True when every submitted batch is done.
    bool idle();
    // Waits for every submitted batch and returns their eigenvalues in
    // submission order: per batch (count, n), each matrix's ascending.
    // Rethrows what a batch failed with (then returns nothing more of it).
    std::vector<std::vector<double>> collect();

private:
    struct Batch {
        const double* gram;
        size_t n, count;
        cudaEvent_t ready;
    };
    void run();
    std::vector<double> eigenvalues(const Batch& b);

    int device_;
    int solverThreads_;            // LAPACK calls at a time, one matrix each
    cudaStream_t stream_ = nullptr;
    double* hostGram_ = nullptr;   // pinned, so that the copy is DMA on a copy engine
    size_t hostGramCount_ = 0;     // doubles

    std::mutex mutex_;
    std::condition_variable changed_;
    std::deque<Batch> queue_;      // submitted, not yet started
    size_t running_ = 0;           // 1 while the thread works on a batch
    std::vector<std::vector<double>> done_;
    std::exception_ptr error_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace relora::gpu
