// The charts' copy of what the run database holds for the runs they show:
// per run, the series of the metric keys asked for and the run's events.
// Each update reads only rows newer than those already held, so polling a
// long run costs what it added since the last poll, not what it holds.
#pragma once

#include "core/store/RunStore.h"
#include "ui/charts/MetricSeries.h"

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace relora::ui {

struct RunData {
    double tokensPerStep = 0;        // batch × context of the run's spec
    std::map<std::string, MetricSeries> series;
    std::vector<store::EventRecord> events;

    const MetricSeries* find(const std::string& key) const;
    // The series whose wall times place every step in time (see xValues).
    const MetricSeries* clock() const { return find(kClockKey); }
    static constexpr const char* kClockKey = "train_loss";
};

class RunMetricCache {
public:
    // Appends the rows of `keys` (and the clock) newer than those held, and
    // the new events. Returns true when anything was added. Throws StoreError.
    bool update(store::RunReader& reader, int64_t run, const std::set<std::string>& keys,
                double tokensPerStep);

    const RunData* find(int64_t run) const;
    // Drops every run not in `runs` (no longer shown, or deleted).
    void retainOnly(const std::set<int64_t>& runs);
    void clear() { runs_.clear(); }

private:
    std::map<int64_t, RunData> runs_;
};

}  // namespace relora::ui
