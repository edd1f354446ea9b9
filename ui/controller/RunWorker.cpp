#include "ui/controller/RunWorker.h"

#include "core/Checkpoint.h"
#include "core/snapshot/Snapshot.h"
#include "core/store/RunStore.h"
#include "ui/controller/CheckpointSnapshot.h"
#include "ui/controller/RunFiles.h"

#include <chrono>
#include <thread>

namespace relora::ui {
namespace {

using Clock = std::chrono::steady_clock;

// Step rate over the last fraction of a second, smoothed, with evaluations
// and snapshots included: the ETA is the time the user will actually wait.
// Readings come at most every kInterval so the GUI thread is never flooded
// by a model that takes a thousand steps a second.
class ProgressMeter {
public:
    static constexpr std::chrono::milliseconds kInterval{200};

    struct Reading {
        double tokensPerSecond, etaSeconds;
    };

    ProgressMeter(int totalSteps, double tokensPerStep) : total_(totalSteps), tokensPerStep_(tokensPerStep) {}

    std::optional<Reading> update(int step) {
        const auto now = Clock::now();
        if (step != total_ && now - last_ < kInterval) return std::nullopt;
        const double seconds = std::chrono::duration<double>(now - last_).count();
        if (seconds > 0 && step > lastStep_) {
            const double rate = (step - lastStep_) / seconds;
            stepsPerSecond_ = stepsPerSecond_ > 0 ? 0.7 * stepsPerSecond_ + 0.3 * rate : rate;
        }
        last_ = now;
        lastStep_ = step;
        if (stepsPerSecond_ <= 0) return std::nullopt;
        return Reading{stepsPerSecond_ * tokensPerStep_, (total_ - step) / stepsPerSecond_};
    }

    // After a pause: the time paused is not training time.
    void resume(int step) {
        last_ = Clock::now();
        lastStep_ = step;
    }

private:
    int total_;
    double tokensPerStep_;
    Clock::time_point last_ = Clock::now();
    int lastStep_ = 0;
    double stepsPerSecond_ = 0;
};

void markFailed(const std::string& database, int64_t runId, const std::string& message) {
    try {
        store::RunStore(database).finish(runId, store::RunStatus::Failed, message);
    } catch (const std::exception&) {
        // The database itself is the problem; the message still reaches the GUI.
    }
}

}  // namespace

void RunWorker::requestSnapshot(SnapshotRequest request) {
    std::lock_guard lock(inboxMutex_);
    inbox_.push_back(std::move(request));
    inboxFilled_ = true;
}

void RunWorker::train(const RunJob& job) {
    std::unique_ptr<store::StoreWriter> writer;
    std::unique_ptr<Backend> backend;
    std::unique_ptr<Trainer> trainer;
    try {
        writer = std::make_unique<store::StoreWriter>(job.database, job.runId);
        backend = createBackendFor(job.spec);
        trainer = std::make_unique<Trainer>(job.spec, *backend, writer.get());
    } catch (const std::exception& e) {
        const std::string message = std::string("could not start: ") + e.what();
        writer.reset();   // releases the run, so that it can be marked failed
        markFailed(job.database, job.runId, message);
        emit finished(job.runId, QStringLiteral("failed"), QString::fromStdString(message));
        serve(nullptr);
        return;
    }
    emit started(job.runId, QString::fromStdString(backend->name()), QString::fromStdString(backend->deviceName()));
    const RunOutcome outcome = runTrainer(job, *trainer, *writer);
    trainer.reset();
    backend.reset();
    writer.reset();   // everything committed, the run's lock released
    emit finished(job.runId, QString::fromStdString(outcome.status), QString::fromStdString(outcome.message));
    serve(nullptr);
}

RunOutcome RunWorker::runTrainer(const RunJob& job, Trainer& trainer, store::StoreWriter& writer) {
    const RunSpec& spec = job.spec;
    TrainerControl& control = *job.control;
    const Live live{trainer, writer, job.runId};
    int64_t lastSnapshot = -1;
    const auto snapshotNow = [&](int step) {
        if (step == lastSnapshot) return;
        try {
            writeLiveSnapshot(live, step, snapshotPath(job.database, job.runId, step));
            lastSnapshot = step;
        } catch (const std::exception& e) {
            writer.event(step, "snapshot_failed", e.what());
            emit warning(job.runId, QStringLiteral("snapshot at step %1 failed: %2").arg(step).arg(e.what()));
        }
    };

    // Called every checkpoint_interval steps and when the run ends with good
    // weights; at the end (finished or stopped) the run's snapshot is taken too.
    trainer.saveCheckpoint = [&](Trainer& t) {
        const int step = t.currentStep();
        try {
            const std::string path = checkpointPath(job.database, job.runId, step);
            writeCheckpoint(path, t.checkpoint());
            writer.recordCheckpoint(step, path);
        } catch (const std::exception& e) {
            writer.event(step, "checkpoint_failed", e.what());
            emit warning(job.runId, QStringLiteral("checkpoint at step %1 failed: %2").arg(step).arg(e.what()));
        }
        if (control.stop || step >= spec.train.steps) snapshotNow(step);
    };

    ProgressMeter meter(spec.train.steps, static_cast<double>(trainer.tokensPerStep()));
    return trainer.run(control, [&](const StepResult& r) {
        if (const auto reading = meter.update(r.step))
            emit progress(job.runId, r.step, spec.train.steps, reading->tokensPerSecond, reading->etaSeconds);
        const int every = spec.train.snapshotInterval;
        if (every > 0 && r.step % every == 0 && r.step < spec.train.steps) snapshotNow(r.step);
        serve(&live);
        // Paused here rather than in Trainer::run's own wait, so that
        // snapshot requests are still served while the run is paused.
        if (control.pause && !control.stop) {
            emit pausedChanged(job.runId, true);
            while (control.pause && !control.stop) {
                serve(&live);
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            meter.resume(r.step);
            emit pausedChanged(job.runId, false);
        }
    });
}

void RunWorker::writeLiveSnapshot(const Live& live, int64_t step, const std::string& path) {
    ensureParentFolder(path);
    const RunSpec& spec = live.trainer.spec();
    writeSnapshot(path, live.trainer.model(), live.runId, step, toString(spec.method.kind), toJson(spec));
    live.writer.recordSnapshot(step, path);
}

void RunWorker::serve(const Live* live) {
    if (!inboxFilled_) return;
    std::vector<SnapshotRequest> requests;
    {
        std::lock_guard lock(inboxMutex_);
        requests.swap(inbox_);
        inboxFilled_ = false;
    }
    for (const SnapshotRequest& r : requests) {
        const QString path = QString::fromStdString(r.path);
        const bool fromLiveModel =
            live && live->runId == r.runId && (!r.step || *r.step == live->trainer.currentStep());
        try {
            int64_t step = 0;
            if (fromLiveModel) {
                step = live->trainer.currentStep();
                writeLiveSnapshot(*live, step, r.path);
            } else {
                step = writeSnapshotFromCheckpoint(r.database, r.runId, r.step, r.path);
                if (live && live->runId == r.runId)
                    live->writer.recordSnapshot(step, r.path);
                else
                    store::RunStore(r.database).recordSnapshot(r.runId, step, r.path);
            }
            emit snapshotWritten(r.runId, step, path);
        } catch (const std::exception& e) {
            emit snapshotFailed(r.runId, QString::fromStdString(e.what()));
        }
    }
}

}  // namespace relora::ui
