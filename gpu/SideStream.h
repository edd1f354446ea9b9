// SideStream: a second CUDA stream for the deferred products (weight
// gradients, LoRA's u and du), whose results only such products and the
// optimizer read, so they may run beside the main stream's next ops
// (Backend::beginDeferredProducts). It keeps the
// bookkeeping that makes this safe: every side op starts after all the main
// stream's work issued before it, and remembers the memory it reads and
// writes with a ticket (the event recorded after it); a main-stream op that
// would write memory a side op still reads or writes, or read memory one
// still writes, first waits for that side op (and the side ops before it,
// which the side stream runs in order). Side ops run in issue order, so
// their results are the same bits as on one stream.
// Host code only; internal to gpu/.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <initializer_list>
#include <vector>

namespace relora::gpu {

class SideStream {
public:
    SideStream();
    ~SideStream();
    SideStream(const SideStream&) = delete;
    SideStream& operator=(const SideStream&) = delete;

    cudaStream_t stream() const { return stream_; }

    // A range of device memory (or of operand-buffer handles): [begin, end).
    struct Range {
        const void* begin;
        const void* end;
        bool written;
    };
    // Call before issuing a side op: it will start after `main`'s work so far.
    void follow(cudaStream_t main);
    // Call after issuing it: returns its ticket (from 1 on).
    size_t issued(std::initializer_list<Range> ranges);

    // Makes `main` wait, before an op that writes [begin, end), for the side
    // ops that read or write that memory; before one that reads it, for those
    // that write it.
    void beforeWrite(cudaStream_t main, const void* begin, const void* end);
    void beforeRead(cudaStream_t main, const void* begin, const void* end);
    // Makes `main` wait for the side op with this ticket (and those before it).
    void wait(cudaStream_t main, size_t ticket);
    // Makes `main` wait for every side op issued so far.
    void join(cudaStream_t main);

private:
    struct Pending {
        Range range;
        size_t ticket;
    };
    static constexpr size_t kEvents = 256;  // a ring; reusing one waits for a later op, which is safe
    cudaStream_t stream_ = nullptr;
    cudaEvent_t ready_ = nullptr;  // on main: where the next side op starts
    std::vector<cudaEvent_t> done_;  // per ticket % kEvents: after that side op
    std::vector<Pending> pending_;
    size_t tickets_ = 0, joined_ = 0;  // issued; waited for by main
    void destroy() noexcept;
};

}  // namespace relora::gpu
