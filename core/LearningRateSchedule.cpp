#include "core/LearningRateSchedule.h"

#include "core/RunSpec.h"

#include <algorithm>
#include <cmath>
#include <numbers>

namespace relora {

CosineSchedule::CosineSchedule(double maxLr, double minRatio, int warmup, int totalSteps)
    : maxLr_(maxLr), minRatio_(minRatio), warmup_(warmup), total_(totalSteps) {}

double CosineSchedule::at(int step) const {
    if (step < warmup_) return maxLr_ * step / warmup_;
    const int span = std::max(1, total_ - warmup_);
    const double progress = std::clamp(double(step - warmup_) / span, 0.0, 1.0);
    return maxLr_ * (minRatio_ + (1.0 - minRatio_) * 0.5 * (1.0 + std::cos(std::numbers::pi * progress)));
}

JaggedCosineSchedule::JaggedCosineSchedule(double maxLr, double minRatio, int warmup,
                                           int totalSteps, std::vector<int> restarts,
                                           int restartWarmup)
    : cosine_(maxLr, minRatio, warmup, totalSteps),
      restarts_(std::move(restarts)),
      restartWarmup_(restartWarmup) {}

double JaggedCosineSchedule::at(int step) const {
    const double base = cosine_.at(step);
    const auto after = std::upper_bound(restarts_.begin(), restarts_.end(), step);
    if (after == restarts_.begin()) return base;
    const int sinceRestart = step - *(after - 1);
    if (sinceRestart >= restartWarmup_) return base;
    return base * sinceRestart / restartWarmup_;
}

std::unique_ptr<LearningRateSchedule> scheduleFor(const RunSpec& spec) {
    const auto& o = spec.optim;
    if (spec.method.kind != Method::ReLoRA)
        return std::make_unique<CosineSchedule>(o.lr, o.minLrRatio, o.warmup, spec.train.steps);
    std::vector<int> troughs = spec.restartSchedule();
    if (spec.relora.warmStartSteps > 0) troughs.insert(troughs.begin(), spec.relora.warmStartSteps);
    return std::make_unique<JaggedCosineSchedule>(o.lr, o.minLrRatio, o.warmup, spec.train.steps, troughs,
                                                  std::max(1, spec.relora.restartWarmup));
}

}  // namespace relora
