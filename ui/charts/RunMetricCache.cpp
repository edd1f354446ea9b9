#include "ui/charts/RunMetricCache.h"

#include <iterator>
#include <limits>

namespace relora::ui {

const MetricSeries* RunData::find(const std::string& key) const {
    const auto it = series.find(key);
    return it == series.end() ? nullptr : &it->second;
}

bool RunMetricCache::update(store::RunReader& reader, int64_t run, const std::set<std::string>& keys,
                            double tokensPerStep) {
    RunData& data = runs_[run];
    data.tokensPerStep = tokensPerStep;
    bool added = false;
    const auto fetch = [&](const std::string& key) {
        MetricSeries& series = data.series[key];
        const auto since = series.lastStep().value_or(std::numeric_limits<int64_t>::min());
        added = series.append(reader.series(run, key, since)) > 0 || added;
    };
    fetch(RunData::kClockKey);
    for (const std::string& key : keys)
        if (key != RunData::kClockKey) fetch(key);

    const int64_t lastEvent = data.events.empty() ? 0 : data.events.back().id;
    auto events = reader.events(run, lastEvent);
    if (!events.empty()) {
        data.events.insert(data.events.end(), std::make_move_iterator(events.begin()),
                           std::make_move_iterator(events.end()));
        added = true;
    }
    return added;
}

const RunData* RunMetricCache::find(int64_t run) const {
    const auto it = runs_.find(run);
    return it == runs_.end() ? nullptr : &it->second;
}

void RunMetricCache::retainOnly(const std::set<int64_t>& runs) {
    std::erase_if(runs_, [&](const auto& entry) { return !runs.count(entry.first); });
}

}  // namespace relora::ui
