#include "gpu/SideStream.h"

#include "gpu/CudaCheck.h"

#include <algorithm>

namespace relora::gpu {

SideStream::SideStream() {
    try {
        CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
        CUDA_CHECK(cudaEventCreateWithFlags(&ready_, cudaEventDisableTiming));
        done_.resize(kEvents, nullptr);
        for (cudaEvent_t& e : done_) CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    } catch (...) {
        destroy();
        throw;
    }
}

SideStream::~SideStream() { destroy(); }

void SideStream::destroy() noexcept {
    if (stream_) cudaStreamSynchronize(stream_);
    for (cudaEvent_t e : done_)
        if (e) cudaEventDestroy(e);
    done_.clear();
    if (ready_) cudaEventDestroy(ready_);
    if (stream_) cudaStreamDestroy(stream_);
    ready_ = nullptr;
    stream_ = nullptr;
}

void SideStream::follow(cudaStream_t main) {
    CUDA_CHECK(cudaEventRecord(ready_, main));
    CUDA_CHECK(cudaStreamWaitEvent(stream_, ready_, 0));
}

size_t SideStream::issued(std::initializer_list<Range> ranges) {
    const size_t ticket = ++tickets_;
    CUDA_CHECK(cudaEventRecord(done_[ticket % kEvents], stream_));
    for (const Range& r : ranges)
        if (r.begin < r.end) pending_.push_back({r, ticket});
    return ticket;
}

void SideStream::wait(cudaStream_t main, size_t ticket) {
    if (ticket <= joined_) return;
    CUDA_CHECK(cudaStreamWaitEvent(main, done_[ticket % kEvents], 0));
    joined_ = ticket;
    std::erase_if(pending_, [&](const Pending& p) { return p.ticket <= ticket; });
}

void SideStream::join(cudaStream_t main) { wait(main, tickets_); }

void SideStream::beforeWrite(cudaStream_t main, const void* begin, const void* end) {
    size_t latest = 0;
    for (const Pending& p : pending_)
        if (p.range.begin < end && begin < p.range.end) latest = std::max(latest, p.ticket);
    wait(main, latest);
}

void SideStream::beforeRead(cudaStream_t main, const void* begin, const void* end) {
    size_t latest = 0;
    for (const Pending& p : pending_)
        if (p.range.written && p.range.begin < end && begin < p.range.end) latest = std::max(latest, p.ticket);
    wait(main, latest);
}

}  // namespace relora::gpu
