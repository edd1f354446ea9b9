// Learning-rate schedules (DESIGN §5). Step t = 0, 1, ... is the index of the
// update the rate is used for.
//   cosine:  t < W0: lr·t/W0;  else lr·(m + (1−m)·½(1 + cos(π·progress))),
//            progress = (t − W0)/(S − W0) clamped to [0, 1], m = min ratio.
//   jagged:  the cosine, multiplied by (t − R)/Wr for Wr steps after each
//            restart R (the rate drops to 0 at R and climbs back).
#pragma once

#include <memory>
#include <vector>

namespace relora {

struct RunSpec;

class LearningRateSchedule {
public:
    virtual ~LearningRateSchedule() = default;
    virtual double at(int step) const = 0;
};

class CosineSchedule : public LearningRateSchedule {
public:
    CosineSchedule(double maxLr, double minRatio, int warmup, int totalSteps);
    double at(int step) const override;

private:
    double maxLr_, minRatio_;
    int warmup_, total_;
};

class JaggedCosineSchedule : public LearningRateSchedule {
public:
    // restarts: strictly increasing, all > 0; restartWarmup >= 1.
    JaggedCosineSchedule(double maxLr, double minRatio, int warmup, int totalSteps,
                         std::vector<int> restarts, int restartWarmup);
    double at(int step) const override;
    const std::vector<int>& restarts() const { return restarts_; }

private:
    CosineSchedule cosine_;
    std::vector<int> restarts_;
    int restartWarmup_;
};

// The schedule a run follows: the plain cosine, or for ReLoRA the jagged
// cosine with a trough at every restart and at the full-rank warm-start
// switch. The trainer and the editor's LR preview both use it.
std::unique_ptr<LearningRateSchedule> scheduleFor(const RunSpec& spec);

}  // namespace relora
