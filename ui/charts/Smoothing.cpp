#include "ui/charts/Smoothing.h"

#include <algorithm>
#include <cmath>

namespace relora::ui {

DebiasedEma::DebiasedEma(double weight) : weight_(std::clamp(weight, 0.0, 0.999)) {}

double DebiasedEma::push(double value) {
    if (!std::isfinite(value)) return value;
    average_ = weight_ * average_ + (1 - weight_) * value;
    normaliser_ = weight_ * normaliser_ + (1 - weight_);
    return average_ / normaliser_;
}

}  // namespace relora::ui
