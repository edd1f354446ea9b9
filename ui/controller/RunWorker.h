// Trains runs on the thread it lives on (one RunWorker per device, owned by
// the RunController). A run's rows go to the database through a
// StoreWriter; its checkpoints and snapshots go next to the database and
// are recorded there. Snapshot requests from the GUI thread wait in an
// inbox that is served between two steps of the run in training, or at once
// when the worker is idle; so every HDF5 call and every use of a model
// happens on this thread.
#pragma once

#include "core/RunSpec.h"
#include "core/Trainer.h"

#include <QObject>
#include <QString>

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace relora::store {
class StoreWriter;
}

namespace relora::ui {

struct RunJob {
    std::string database;
    int64_t runId = 0;
    RunSpec spec;
    std::shared_ptr<TrainerControl> control;
};

struct SnapshotRequest {
    std::string database;
    int64_t runId = 0;
    std::optional<int64_t> step;   // empty: the run's step now if it trains, else its last checkpoint
    std::string path;
};

class RunWorker : public QObject {
    Q_OBJECT
public:
    // Any thread. Served after the current step, or by serveSnapshots().
    void requestSnapshot(SnapshotRequest request);

    // On the worker's thread (QMetaObject::invokeMethod). Returns when the run ends.
    void train(const RunJob& job);
    // On the worker's thread: serves the requests waiting while idle.
    void serveSnapshots() { serve(nullptr); }

signals:
    void started(qint64 runId, const QString& backend, const QString& device);
    void progress(qint64 runId, int step, int totalSteps, double tokensPerSecond, double etaSeconds);
    void pausedChanged(qint64 runId, bool paused);
    void finished(qint64 runId, const QString& status, const QString& message);
    void snapshotWritten(qint64 runId, qint64 step, const QString& path);
    void snapshotFailed(qint64 runId, const QString& message);
    void warning(qint64 runId, const QString& message);

private:
    // What serve() needs to know about the run in training.
    struct Live {
        Trainer& trainer;
        store::StoreWriter& writer;
        int64_t runId;
    };
    void serve(const Live* live);
    RunOutcome runTrainer(const RunJob& job, Trainer& trainer, store::StoreWriter& writer);
    // Writes the live model's snapshot and records it with the run's rows. Throws.
    static void writeLiveSnapshot(const Live& live, int64_t step, const std::string& path);

    std::mutex inboxMutex_;
    std::vector<SnapshotRequest> inbox_;
    std::atomic<bool> inboxFilled_{false};
};

}  // namespace relora::ui
