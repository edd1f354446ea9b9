// The one way the GUI starts and steers training (DESIGN §2): it records
// each run in the database as queued, keeps a queue per device (one run
// trains at a time on a device, the rest wait), hands runs to the device's
// RunWorker thread, and relays pause, resume and stop through the run's
// TrainerControl. Widgets never touch the engine; they call this object and
// read what runs produce from the database.
#pragma once

#include "core/RunSpec.h"

#include <QObject>
#include <QString>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <vector>

class QThread;

namespace relora {
struct TrainerControl;
namespace store {
class RunStore;
}
}  // namespace relora

namespace relora::ui {

class RunWorker;

class RunController : public QObject {
    Q_OBJECT
public:
    explicit RunController(QObject* parent = nullptr);
    // Stops every run and waits for the workers (see shutdown()).
    ~RunController() override;

    // The database runs are recorded in, created when missing. Throws
    // store::StoreError when it cannot be used (the previous one stays), and
    // std::logic_error while runs are queued or training.
    void setDatabase(const QString& path);
    QString database() const { return database_; }

    // Validates the spec (throws InvalidSpec listing every problem), records
    // the run as queued and starts it as soon as its device is free.
    int64_t enqueue(const RunSpec& spec);
    void pause(int64_t runId);
    void resume(int64_t runId);
    // A training run stops after its current step (checkpointed, with its
    // final snapshot); a queued one is cancelled.
    void stop(int64_t runId);
    // A snapshot of the run at `step` (empty: its step now if it trains,
    // else its last checkpoint), written on a worker thread: after the
    // current step of a training run, or at once.
    void exportSnapshot(int64_t runId, std::optional<int64_t> step, const QString& path);

    // Cancels the queued runs, stops the training ones and waits up to
    // timeoutMs (negative: as long as it takes) for them to end. False if
    // some did not end in time.
    bool shutdown(int timeoutMs = 120000);

    bool busy() const;
    std::vector<int64_t> trainingRuns() const;
    std::vector<int64_t> queuedRuns() const;
    bool isPaused(int64_t runId) const;
    // The run the status bar and the toolbar act on: the last one started
    // that still trains.
    std::optional<int64_t> currentRun() const;

    // "cpu" or "cuda": the queue a spec waits in ("auto" resolved now).
    static QString deviceKey(const RunSpec& spec);

signals:
    void runQueued(qint64 runId);
    void runStarted(qint64 runId, const QString& backend, const QString& device);
    void progress(qint64 runId, int step, int totalSteps, double tokensPerSecond, double etaSeconds);
    void pausedChanged(qint64 runId, bool paused);
    void runEnded(qint64 runId, const QString& status, const QString& message);
    void snapshotWritten(qint64 runId, qint64 step, const QString& path);
    void snapshotFailed(qint64 runId, const QString& message);
    void warning(qint64 runId, const QString& message);
    void busyChanged(bool busy);

private:
    struct Lane;
    Lane& lane(const QString& key);
    Lane* laneTraining(int64_t runId) const;
    void dispatch(Lane& lane);
    void onFinished(const QString& laneKey, qint64 runId, const QString& status, const QString& message);
    void noteBusy();

    QString database_;
    std::unique_ptr<store::RunStore> store_;
    std::map<QString, std::unique_ptr<Lane>> lanes_;
    std::optional<int64_t> lastStarted_;
    bool busy_ = false;
};

}  // namespace relora::ui
