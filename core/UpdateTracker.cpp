#include "core/UpdateTracker.h"

#include <algorithm>

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
    scratch_ = be_.allocate(std::max<size_t>(largest, 1));
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

std::vector<MatrixUpdate> UpdateTracker::measure(float tau) {
    std::vector<MatrixUpdate> result;
    for (size_t i = 0; i < tracked_.size(); ++i) {
        const LinearPart& p = *tracked_[i];
        delta(i, scratch_);
        MatrixUpdate u;
        u.part = &p;
        u.label = partLabel(p);
        u.sigma = be_.singularValues(scratch_, p.out, p.weight->cols);
        u.ranks = summarizeSpectrum(u.sigma, tau);
        result.push_back(std::move(u));
    }
    return result;
}

}  // namespace relora
