// The GUI's one reader of the run database (PlotJuggler style: the trainer
// never touches a widget; the GUI pulls). A QTimer on the GUI thread asks
// RunReader::dataVersion() whether anything was committed since the last
// poll and, only then, refreshes the run list and reads the new rows of the
// watched runs' wanted keys into a RunMetricCache. Views redraw from the
// cache when told, so any number of commits between two polls costs one
// redraw.
#pragma once

#include "core/store/RunStore.h"
#include "ui/charts/RunMetricCache.h"
#include "ui/data/StoredSpec.h"

#include <QObject>
#include <QSet>
#include <QTimer>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace relora::ui {

class RunDataPoller : public QObject {
    Q_OBJECT
public:
    static constexpr int kDefaultIntervalMs = 250;

    explicit RunDataPoller(QObject* parent = nullptr);
    ~RunDataPoller() override;

    // Reads `path` from now on (throws store::StoreError when it cannot);
    // the previous database stays open when it throws.
    void open(const QString& path);
    void close();
    bool isOpen() const { return reader_ != nullptr; }
    QString path() const;

    // The runs whose metrics are read (those overlaid in the charts).
    void setWatchedRuns(const std::set<int64_t>& runs);
    const std::set<int64_t>& watchedRuns() const { return watched_; }
    // The metric keys one view wants; the poller reads the union.
    void setWantedKeys(const QString& view, const std::set<std::string>& keys);

    const std::vector<store::RunSummary>& runs() const { return runs_; }
    const store::RunSummary* run(int64_t id) const;
    const StoredSpec* spec(int64_t id) const;
    const RunMetricCache& cache() const { return cache_; }
    // For queries the poller does not cache (spectra, CSV, files). Null when closed.
    store::RunReader* reader() { return reader_.get(); }

    void setInterval(int ms) { timer_.setInterval(ms); }
    int interval() const { return timer_.interval(); }

public slots:
    // Polls now, even if nothing was committed.
    void pollNow();

signals:
    void runsChanged();                            // list, status or summary figures
    void dataChanged(const QSet<qint64>& runs);    // new rows of these watched runs
    void failed(const QString& message);           // the database became unreadable

private:
    // force: re-read the run list even without a commit; dataOnly: the
    // queued read after the watched runs or wanted keys changed.
    void poll(bool force, bool dataOnly = false);
    void refreshRuns();
    void refreshData();
    void scheduleRead();

    QTimer timer_;
    std::unique_ptr<store::RunReader> reader_;
    int64_t version_ = -1;
    std::vector<store::RunSummary> runs_;
    std::map<int64_t, StoredSpec> specs_;
    std::map<QString, std::set<std::string>> wanted_;
    std::set<std::string> keys_;
    std::set<int64_t> watched_;
    RunMetricCache cache_;
    std::set<int64_t> complete_;   // final runs read after they ended: nothing more to read
    bool readScheduled_ = false;
    int pollsSinceListRefresh_ = 0;
    QString lastError_;
};

}  // namespace relora::ui
