#include "core/UpdateTracker.h"

#include <algorithm>
#include <stdexcept>

namespace relora {

std::string partLabel(const LinearPart& part) {
    return "layers." + std::to_string(part.layer) + "." + toString(part.kind);
}

UpdateTracker::UpdateTracker(Backend& backend, std::vector<LinearPart*> tracked)
    : be_(backend), tracked_(std::move(tracked)) {
    size_t largest = 0;
    for (LinearPart* p : tracked_) {
        refs_.push_back(be_.allocate(p->weight->count()));
        largest = std::max(largest, p->weight->count());
    }
    scratchStride_ = std::max<size_t>(largest, 1);
    scratch_ = be_.allocate(scratchStride_ * std::min(kSpectraBatch, std::max<size_t>(tracked_.size(), 1)));
    resetReference();
}

UpdateTracker::~UpdateTracker() {
    for (float* r : refs_) be_.release(r);
    be_.release(scratch_);
}

void UpdateTracker::resetReference() {
    for (size_t i = 0; i < tracked_.size(); ++i) {
        delta(i, scratch_);  // ΔW relative to the old reference, then fold it in
        be_.axpy(refs_[i], 1.0f, scratch_, tracked_[i]->weight->count());
    }
}

void UpdateTracker::delta(size_t index, float* out) const {
    const LinearPart& p = *tracked_[index];
    const size_t n = p.weight->count(), in = p.weight->cols;
    be_.copy(out, p.weight->value, n);
    be_.axpy(out, -1.0f, refs_[index], n);
    if (const LoRAAdapter* a = p.lora.get())
        be_.gemm(false, false, p.out, in, a->rank, a->scale, a->B->value, a->rank, a->A->value, in,
                 1.0f, out, in);
}

void UpdateTracker::startMeasure() {
    for (size_t first = 0; first < tracked_.size(); first += kSpectraBatch) {
        const size_t count = std::min(kSpectraBatch, tracked_.size() - first);
        std::vector<MatrixRef> deltas;
        for (size_t j = 0; j < count; ++j) {
            float* out = scratch_ + j * scratchStride_;
            delta(first + j, out);
            deltas.push_back({out, tracked_[first + j]->out, tracked_[first + j]->weight->cols});
        }
        be_.queueSingularValues(deltas);
    }
}

std::optional<std::vector<MatrixUpdate>> UpdateTracker::finishMeasure(float tau, bool wait) {
    std::optional<std::vector<std::vector<float>>> spectra = be_.takeSingularValues(wait);
    if (!spectra) return std::nullopt;
    if (spectra->size() != tracked_.size())
        throw std::logic_error("UpdateTracker: " + std::to_string(spectra->size()) + " spectra for " +
                               std::to_string(tracked_.size()) + " matrices");
    std::vector<MatrixUpdate> result;
    for (size_t i = 0; i < tracked_.size(); ++i) {
        MatrixUpdate u;
        u.part = tracked_[i];
        u.label = partLabel(*u.part);
        u.sigma = std::move((*spectra)[i]);
        u.ranks = summarizeSpectrum(u.sigma, tau);
        result.push_back(std::move(u));
    }
    return result;
}

}  // namespace relora
