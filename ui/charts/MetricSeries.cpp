#include "ui/charts/MetricSeries.h"

namespace relora::ui {

size_t MetricSeries::append(const std::vector<store::SeriesPoint>& points) {
    size_t added = 0;
    for (const store::SeriesPoint& p : points) {
        if (!steps_.empty() && static_cast<double>(p.step) <= steps_.back()) continue;
        steps_.push_back(static_cast<double>(p.step));
        values_.push_back(p.value);
        wall_.push_back(p.wall);
        ++added;
    }
    return added;
}

std::optional<int64_t> MetricSeries::lastStep() const {
    if (steps_.empty()) return std::nullopt;
    return static_cast<int64_t>(steps_.back());
}

const std::vector<double>& MetricSeries::smoothed(double weight) const {
    if (weight <= 0) return values_;
    if (!smoothedValid_ || DebiasedEma(weight).weight() != ema_.weight()) {
        ema_ = DebiasedEma(weight);
        smoothed_.clear();
        smoothedValid_ = true;
    }
    for (size_t i = smoothed_.size(); i < values_.size(); ++i) smoothed_.push_back(ema_.push(values_[i]));
    return smoothed_;
}

}  // namespace relora::ui
