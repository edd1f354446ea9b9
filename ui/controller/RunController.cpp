#include "ui/controller/RunController.h"

#include "core/Backend.h"
#include "core/Trainer.h"
#include "core/store/RunStore.h"
#include "ui/controller/RunWorker.h"

#include <QDeadlineTimer>
#include <QThread>

#include <algorithm>
#include <stdexcept>

namespace relora::ui {

// One device: its worker thread, the run training on it, and those waiting.
struct RunController::Lane {
    QString key;
    QThread thread;
    RunWorker* worker = nullptr;   // lives on `thread`
    std::deque<std::pair<int64_t, RunSpec>> queue;
    int64_t training = 0;          // 0: idle
    std::shared_ptr<TrainerControl> control;
    bool paused = false;
};

RunController::RunController(QObject* parent) : QObject(parent) {}

RunController::~RunController() { shutdown(-1); }

QString RunController::deviceKey(const RunSpec& spec) {
    if (spec.backend == "cpu") return QStringLiteral("cpu");
    if (spec.backend == "cuda") return QStringLiteral("cuda");
    return cudaAvailable() ? QStringLiteral("cuda") : QStringLiteral("cpu");
}

void RunController::setDatabase(const QString& path) {
    if (busy()) throw std::logic_error("runs are queued or training; stop them before switching databases");
    auto store = std::make_unique<store::RunStore>(path.toStdString());
    store_ = std::move(store);
    database_ = path;
}

RunController::Lane& RunController::lane(const QString& key) {
    auto& slot = lanes_[key];
    if (slot) return *slot;
    slot = std::make_unique<Lane>();
    Lane& l = *slot;
    l.key = key;
    l.thread.setObjectName("relora-" + key);
    l.worker = new RunWorker;
    l.worker->moveToThread(&l.thread);
    // The lambdas find the lane by key: a signal queued before shutdown()
    // may arrive after the lane is gone.
    connect(l.worker, &RunWorker::started, this, [this](qint64 id, const QString& backend, const QString& device) {
        lastStarted_ = id;
        emit runStarted(id, backend, device);
    });
    connect(l.worker, &RunWorker::progress, this, &RunController::progress);
    connect(l.worker, &RunWorker::pausedChanged, this, [this](qint64 id, bool paused) {
        if (Lane* found = laneTraining(id)) found->paused = paused;
        emit pausedChanged(id, paused);
    });
    connect(l.worker, &RunWorker::finished, this, [this, key](qint64 id, const QString& status, const QString& message) {
        onFinished(key, id, status, message);
    });
    connect(l.worker, &RunWorker::snapshotWritten, this, &RunController::snapshotWritten);
    connect(l.worker, &RunWorker::snapshotFailed, this, &RunController::snapshotFailed);
    connect(l.worker, &RunWorker::warning, this, &RunController::warning);
    l.thread.start();
    return l;
}

RunController::Lane* RunController::laneTraining(int64_t runId) const {
    for (const auto& [key, l] : lanes_)
        if (l->training == runId) return l.get();
    return nullptr;
}

int64_t RunController::enqueue(const RunSpec& spec) {
    if (!store_) throw std::runtime_error("no run database is open (File > Open database…)");
    if (auto errors = validate(spec); !errors.empty()) throw InvalidSpec(std::move(errors));
    const int64_t id = store_->createRun(toJson(spec), spec.name, toString(spec.method.kind));
    Lane& l = lane(deviceKey(spec));
    l.queue.emplace_back(id, spec);
    emit runQueued(id);
    dispatch(l);
    noteBusy();
    return id;
}

void RunController::dispatch(Lane& l) {
    if (l.training != 0 || l.queue.empty()) return;
    auto [id, spec] = std::move(l.queue.front());
    l.queue.pop_front();
    l.training = id;
    l.paused = false;
    l.control = std::make_shared<TrainerControl>();
    RunJob job{database_.toStdString(), id, std::move(spec), l.control};
    RunWorker* worker = l.worker;
    QMetaObject::invokeMethod(worker, [worker, job] { worker->train(job); }, Qt::QueuedConnection);
}

void RunController::onFinished(const QString& key, qint64 runId, const QString& status, const QString& message) {
    if (lastStarted_ == runId) lastStarted_.reset();
    const auto found = lanes_.find(key);
    Lane* l = found == lanes_.end() ? nullptr : found->second.get();
    if (l && l->training == runId) {
        l->training = 0;
        l->control.reset();
        l->paused = false;
    }
    emit runEnded(runId, status, message);
    if (l) dispatch(*l);
    noteBusy();
}

void RunController::pause(int64_t runId) {
    if (Lane* l = laneTraining(runId)) l->control->pause = true;
}

void RunController::resume(int64_t runId) {
    if (Lane* l = laneTraining(runId)) l->control->pause = false;
}

void RunController::stop(int64_t runId) {
    if (Lane* l = laneTraining(runId)) {
        l->control->stop = true;
        return;
    }
    for (auto& [key, l] : lanes_) {
        auto& q = l->queue;
        const auto it = std::find_if(q.begin(), q.end(), [&](const auto& entry) { return entry.first == runId; });
        if (it == q.end()) continue;
        q.erase(it);
        const QString message = tr("cancelled before it started");
        try {
            store_->finish(runId, store::RunStatus::Stopped, message.toStdString());
        } catch (const std::exception& e) {
            emit warning(runId, QString::fromStdString(e.what()));
        }
        emit runEnded(runId, QStringLiteral("stopped"), message);
        noteBusy();
        return;
    }
}

void RunController::exportSnapshot(int64_t runId, std::optional<int64_t> step, const QString& path) {
    if (!store_) {
        emit snapshotFailed(runId, tr("no run database is open"));
        return;
    }
    Lane* l = laneTraining(runId);
    RunWorker* worker = (l ? *l : lane(QStringLiteral("cpu"))).worker;
    worker->requestSnapshot({database_.toStdString(), runId, step, path.toStdString()});
    QMetaObject::invokeMethod(worker, [worker] { worker->serveSnapshots(); }, Qt::QueuedConnection);
}

bool RunController::shutdown(int timeoutMs) {
    for (auto& [key, l] : lanes_) {
        while (!l->queue.empty()) stop(l->queue.front().first);
        if (l->control) {
            l->control->stop = true;
            l->control->pause = false;
        }
        l->thread.quit();   // after the run in training returns
    }
    const QDeadlineTimer deadline(timeoutMs);   // negative: no limit
    bool ended = true;
    for (auto& [key, l] : lanes_) ended = l->thread.wait(deadline) && ended;
    if (!ended) return false;
    for (auto& [key, l] : lanes_) delete l->worker;
    lanes_.clear();
    lastStarted_.reset();
    noteBusy();
    return true;
}

bool RunController::busy() const {
    return std::any_of(lanes_.begin(), lanes_.end(),
                       [](const auto& entry) { return entry.second->training != 0 || !entry.second->queue.empty(); });
}

std::vector<int64_t> RunController::trainingRuns() const {
    std::vector<int64_t> out;
    for (const auto& [key, l] : lanes_)
        if (l->training) out.push_back(l->training);
    return out;
}

std::vector<int64_t> RunController::queuedRuns() const {
    std::vector<int64_t> out;
    for (const auto& [key, l] : lanes_)
        for (const auto& entry : l->queue) out.push_back(entry.first);
    return out;
}

bool RunController::isPaused(int64_t runId) const {
    const Lane* l = laneTraining(runId);
    return l && l->paused;
}

std::optional<int64_t> RunController::currentRun() const {
    if (lastStarted_ && laneTraining(*lastStarted_)) return lastStarted_;
    const auto training = trainingRuns();
    if (training.empty()) return std::nullopt;
    return training.front();
}

void RunController::noteBusy() {
    const bool now = busy();
    if (now == busy_) return;
    busy_ = now;
    emit busyChanged(now);
}

}  // namespace relora::ui
