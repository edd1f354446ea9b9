// Debiased exponential moving average, the smoothing of TensorBoard: the
// average starts at zero and is divided by (1 − wⁿ), so the first points are
// not dragged towards zero. Fed one value at a time, so a series that grows
// by appending is smoothed in time proportional to its new rows only.
#pragma once

namespace relora::ui {

class DebiasedEma {
public:
    // weight in [0, 1): 0 returns the values unchanged, 0.99 smooths hard.
    explicit DebiasedEma(double weight = 0);

    // The smoothed value after `value`. Non-finite values are returned as
    // they are and leave the average untouched (a diverged step does not
    // poison every point after it).
    double push(double value);
    double weight() const { return weight_; }

private:
    double weight_;
    double average_ = 0;
    double normaliser_ = 0;   // 1 − wⁿ after n finite values
};

}  // namespace relora::ui
