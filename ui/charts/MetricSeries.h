// One metric of one run as the charts hold it: the rows read so far from
// the run database, grown by appending the rows newer than the last step
// seen (RunReader::series(run, key, lastStep())). The smoothed values are
// kept alongside and extended on append; they are computed on the full data,
// before any decimation, and recomputed only when the weight changes.
#pragma once

#include "core/store/RunStore.h"
#include "ui/charts/Smoothing.h"

#include <cstdint>
#include <optional>
#include <vector>

namespace relora::ui {

class MetricSeries {
public:
    // Appends the points whose step is after lastStep(); returns how many.
    size_t append(const std::vector<store::SeriesPoint>& points);

    size_t size() const { return steps_.size(); }
    bool empty() const { return steps_.empty(); }
    std::optional<int64_t> lastStep() const;

    const std::vector<double>& steps() const { return steps_; }
    const std::vector<double>& values() const { return values_; }
    // Seconds since the run started, as the trainer reported them (0 for
    // rows it reported without a time, such as evaluations).
    const std::vector<double>& wall() const { return wall_; }

    // values() smoothed with a debiased EMA of `weight` (0 = the values).
    const std::vector<double>& smoothed(double weight) const;

private:
    std::vector<double> steps_, values_, wall_;
    mutable std::vector<double> smoothed_;
    mutable DebiasedEma ema_;
    mutable bool smoothedValid_ = false;
};

}  // namespace relora::ui
