// Shared by the GUI's Qt Test suites: a tiny run spec that trains in
// milliseconds per step, and a run database filled through the real writer.
#pragma once

#include "core/RunSpec.h"
#include "core/store/RunStore.h"

#include <QCoreApplication>
#include <QElapsedTimer>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

namespace relora::uitest {

// d_model 32, d_ff 64, 2 heads, 1 layer, context 32, batch 2: steps take
// about a millisecond on one core. The default corpus when it is installed.
inline RunSpec tinySpec(Method method, int steps, const std::string& name = "tiny") {
    RunSpec s = defaultSpec(method, "tiny");
    s.name = name;
    s.backend = "cpu";
    s.model.preset = "custom";
    s.model.dModel = 32;
    s.model.dFF = 64;
    s.model.heads = 2;
    s.model.layers = 1;
    s.model.context = 32;
    s.train.batch = 2;
    s.train.steps = steps;
    s.train.evalInterval = std::max(1, steps / 10);
    s.train.evalBatches = 2;
    s.train.threads = 1;
    s.method.rank = 4;
    s.optim.warmup = std::min(10, steps / 4);
    s.relora.resetInterval = std::max(2, steps / 4);
    s.relora.restartWarmup = 1;
    s.data.synthetic = !std::filesystem::exists(s.data.corpus);
    return s;
}

// A run in `db` with `steps` train_loss/lr rows (value = f(step), wall =
// step/10 s) and a val_loss every 10 steps, written by a StoreWriter and
// ended with `status` (finished, failed or stopped).
inline int64_t writeRun(const std::string& db, const std::string& name, Method method, int steps,
                        const std::string& status = "finished", double lossScale = 1.0) {
    RunSpec spec = tinySpec(method, std::max(steps, 10), name);
    const int64_t id = store::RunStore(db).createRun(toJson(spec), name, toString(method));
    store::StoreWriter writer(db, id);
    writer.runStarted(toJson(spec), "cpu", "test CPU");
    for (int s = 1; s <= steps; ++s) {
        std::vector<MetricPoint> points{{"train_loss", s, lossScale * (5.0 / std::sqrt(double(s)))},
                                        {"lr", s, 1e-3}};
        if (s % 10 == 0) points.push_back({"val_loss", s, lossScale * (5.5 / std::sqrt(double(s)))});
        writer.metrics(points, s / 10.0);
    }
    writer.runFinished(status, status + " by the test");
    return id;
}

// Processes events until `done` or `ms` pass; true when done.
template <class F>
bool waitFor(F done, int ms) {
    QElapsedTimer t;
    t.start();
    while (!done()) {
        if (t.elapsed() > ms) return false;
        QCoreApplication::processEvents(QEventLoop::AllEvents, 20);
    }
    return true;
}

}  // namespace relora::uitest
