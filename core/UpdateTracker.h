// UpdateTracker: the learned update ΔW = W_now − W_ref (+ s·B·A while an
// adapter is live) of every tracked matrix, and its spectrum (DESIGN §6).
// W_ref is taken when low-rank training starts (or at step 0 for full-rank).
#pragma once

#include "core/Backend.h"
#include "core/LinearLayer.h"
#include "core/RankMetrics.h"

#include <optional>
#include <string>
#include <vector>

namespace relora {

struct MatrixUpdate {
    const LinearPart* part = nullptr;
    std::string label;            // "layers.3.wq"
    std::vector<float> sigma;     // descending
    RankSummary ranks;
};

class UpdateTracker {
public:
    UpdateTracker(Backend& backend, std::vector<LinearPart*> tracked);
    ~UpdateTracker();
    UpdateTracker(const UpdateTracker&) = delete;
    UpdateTracker& operator=(const UpdateTracker&) = delete;

    // W_ref := the current effective weights of every tracked matrix.
    void resetReference();
    // The spectra of every tracked ΔW, in two halves: start() snapshots
    // every ΔW now and has the backend compute the spectra in the
    // background; finish() returns them once ready (nothing while they are
    // not and wait is false).
    void startMeasure();
    std::optional<std::vector<MatrixUpdate>> finishMeasure(float tau, bool wait);
    // ΔW of one tracked matrix into backend memory delta(out, in).
    void delta(size_t index, float* delta) const;

    const std::vector<LinearPart*>& tracked() const { return tracked_; }
    std::vector<float*>& references() { return refs_; }

private:
    Backend& be_;
    std::vector<LinearPart*> tracked_;
    std::vector<float*> refs_;      // (out, in) per tracked matrix
    // ΔW of up to kSpectraBatch matrices at once, so that a backend can
    // take their spectra in one batch: slots of the largest (out, in).
    static constexpr size_t kSpectraBatch = 8;
    float* scratch_ = nullptr;      // (kSpectraBatch, scratchStride_)
    size_t scratchStride_ = 0;
};

std::string partLabel(const LinearPart& part);   // "layers.3.wq"

}  // namespace relora
