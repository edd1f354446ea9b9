#include "ui/data/RunDataPoller.h"

#include <QMetaObject>

#include <algorithm>

namespace relora::ui {
namespace {

// A dead writer turns 'running' into 'interrupted' without any commit, so the
// run list is re-read now and then even when data_version stands still.
constexpr int kPollsPerForcedListRefresh = 20;

bool isFinal(const std::string& status) { return status != "running" && status != "queued"; }

}  // namespace

RunDataPoller::RunDataPoller(QObject* parent) : QObject(parent) {
    timer_.setInterval(kDefaultIntervalMs);
    connect(&timer_, &QTimer::timeout, this, [this] {
        poll(++pollsSinceListRefresh_ >= kPollsPerForcedListRefresh);
    });
}

RunDataPoller::~RunDataPoller() = default;

void RunDataPoller::open(const QString& path) {
    auto reader = std::make_unique<store::RunReader>(path.toStdString());
    reader_ = std::move(reader);
    version_ = -1;
    runs_.clear();
    specs_.clear();
    cache_.clear();
    complete_.clear();
    lastError_.clear();
    timer_.start();
    poll(true);
}

void RunDataPoller::close() {
    timer_.stop();
    reader_.reset();
    runs_.clear();
    specs_.clear();
    cache_.clear();
    complete_.clear();
    emit runsChanged();
    emit dataChanged({});
}

QString RunDataPoller::path() const {
    return reader_ ? QString::fromStdString(reader_->path()) : QString();
}

const store::RunSummary* RunDataPoller::run(int64_t id) const {
    const auto it = std::find_if(runs_.begin(), runs_.end(), [&](const auto& r) { return r.id == id; });
    return it == runs_.end() ? nullptr : &*it;
}

const StoredSpec* RunDataPoller::spec(int64_t id) const {
    const auto it = specs_.find(id);
    return it == specs_.end() ? nullptr : &it->second;
}

void RunDataPoller::setWatchedRuns(const std::set<int64_t>& runs) {
    if (runs == watched_) return;
    watched_ = runs;
    cache_.retainOnly(runs);
    std::erase_if(complete_, [&](int64_t id) { return !runs.count(id); });
    scheduleRead();
}

void RunDataPoller::setWantedKeys(const QString& view, const std::set<std::string>& keys) {
    wanted_[view] = keys;
    std::set<std::string> all;
    for (const auto& [name, k] : wanted_) all.insert(k.begin(), k.end());
    if (all == keys_) return;
    const bool grew = !std::includes(keys_.begin(), keys_.end(), all.begin(), all.end());
    keys_ = std::move(all);
    if (grew) {
        complete_.clear();
        scheduleRead();
    }
}

void RunDataPoller::scheduleRead() {
    if (readScheduled_) return;
    readScheduled_ = true;
    QMetaObject::invokeMethod(this, [this] { poll(false, true); }, Qt::QueuedConnection);
}

void RunDataPoller::pollNow() { poll(true); }

void RunDataPoller::poll(bool force, bool dataOnly) {
    if (dataOnly) readScheduled_ = false;
    if (!reader_) return;
    try {
        const int64_t version = reader_->dataVersion();
        const bool committed = version != version_;
        if (committed || force) {
            version_ = version;
            pollsSinceListRefresh_ = 0;
            refreshRuns();
        }
        if (committed || force || dataOnly) refreshData();
        lastError_.clear();
    } catch (const std::exception& e) {
        const QString message = QString::fromStdString(e.what());
        if (message != lastError_) {
            lastError_ = message;
            emit failed(message);
        }
    }
}

void RunDataPoller::refreshRuns() {
    auto runs = reader_->listRuns();
    std::map<int64_t, StoredSpec> specs;
    for (const store::RunSummary& r : runs) {
        const store::RunSummary* before = run(r.id);
        auto known = specs_.find(r.id);
        // The writer stores the spec the trainer reports when a run starts;
        // a new creation time means the id was reused after a delete.
        const bool stale = known == specs_.end() || !before || before->status != r.status ||
                           before->createdAt != r.createdAt;
        if (before && before->createdAt != r.createdAt) {
            cache_.retainOnly({});
            complete_.clear();
        }
        specs[r.id] = stale ? readStoredSpec(reader_->spec(r.id).value_or(std::string()))
                            : std::move(known->second);
    }
    runs_ = std::move(runs);
    specs_ = std::move(specs);
    emit runsChanged();
}

void RunDataPoller::refreshData() {
    QSet<qint64> changed;
    std::set<int64_t> present;
    for (int64_t id : watched_) {
        const store::RunSummary* summary = run(id);
        if (!summary) continue;
        present.insert(id);
        if (complete_.count(id)) continue;   // final and fully read: nothing more will come
        const StoredSpec* stored = spec(id);
        if (cache_.update(*reader_, id, keys_, stored ? stored->tokensPerStep() : 0)) changed.insert(id);
        if (isFinal(summary->status)) complete_.insert(id);
    }
    cache_.retainOnly(present);
    if (!changed.isEmpty()) emit dataChanged(changed);
}

}  // namespace relora::ui
