#include "ui/data/SweepData.h"

#include "ui/data/RunDataPoller.h"

#include <cmath>

namespace relora::ui {

std::vector<experiments::WarmStartSweep> sweepsIn(const RunDataPoller& poller) {
    std::vector<std::pair<int64_t, RunSpec>> runs;   // only sweep runs' specs are worth copying
    for (const store::RunSummary& r : poller.runs()) {
        const StoredSpec* stored = poller.spec(r.id);
        if (stored && stored->spec && experiments::sweepStem(*stored->spec)) runs.emplace_back(r.id, *stored->spec);
    }
    return experiments::findWarmStartSweeps(runs);
}

std::vector<SweepPoint> sweepPoints(const RunDataPoller& poller, const std::vector<int64_t>& runs) {
    std::vector<SweepPoint> points;
    for (int64_t id : runs) {
        const store::RunSummary* summary = poller.run(id);
        const StoredSpec* stored = poller.spec(id);
        if (!summary || !stored || !stored->spec) continue;
        SweepPoint p;
        p.run = id;
        p.name = QString::fromStdString(summary->name);
        p.switchPercent = 100 * experiments::switchFraction(*stored->spec);
        p.status = QString::fromStdString(summary->status);
        // A run that diverged finished without a loss to plot.
        if (summary->status == "finished" && summary->valLoss && std::isfinite(*summary->valLoss))
            p.finalValLoss = summary->valLoss;
        points.push_back(std::move(p));
    }
    return points;
}

}  // namespace relora::ui
