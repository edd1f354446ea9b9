// What the sweep chart shows of a warm-start sweep, read from what the
// poller holds of the run database: which runs form the database's sweeps
// (core's findWarmStartSweeps, on the stored specs) and, per run, its switch
// point, status and final validation loss.
#pragma once

#include "core/Experiments.h"

#include <QString>

#include <cstdint>
#include <optional>
#include <vector>

namespace relora::ui {

class RunDataPoller;

struct SweepPoint {
    int64_t run = 0;
    QString name;
    double switchPercent = 0;              // share of the steps trained full-rank first
    QString status;                        // queued, running, finished, failed, ...
    std::optional<double> finalValLoss;    // once the run finished

    bool finished() const { return finalValLoss.has_value(); }
    // Still to come: a result may follow.
    bool pending() const { return status == QLatin1String("queued") || status == QLatin1String("running"); }
};

// The sweeps among the poller's runs, oldest first. Runs whose spec cannot
// be read belong to none.
std::vector<experiments::WarmStartSweep> sweepsIn(const RunDataPoller& poller);

// The points of these runs, in their order; runs gone from the database are
// left out.
std::vector<SweepPoint> sweepPoints(const RunDataPoller& poller, const std::vector<int64_t>& runs);

}  // namespace relora::ui
