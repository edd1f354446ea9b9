// The run table and, beside it, the config diff of the overlaid runs. Kept
// up to date from the poller; a row's check box overlays the run in the
// charts; its context menu offers what can be done with one run.
#pragma once

#include "ui/charts/ChartStyle.h"

#include <QTabWidget>

#include <cstdint>
#include <optional>
#include <vector>

class QCheckBox;
class QSortFilterProxyModel;
class QTableView;

namespace relora::ui {

class ConfigDiffModel;
class RunDataPoller;
class RunTableModel;

class RunsPanel : public QTabWidget {
    Q_OBJECT
public:
    explicit RunsPanel(RunDataPoller* poller, QWidget* parent = nullptr);

    RunTableModel* model() const { return model_; }
    ConfigDiffModel* diffModel() const { return diff_; }
    QTableView* table() const { return table_; }
    QCheckBox* differencesOnly() const { return differencesOnly_; }

    // The checked runs, in id order, each with its name and colour.
    std::vector<RunStyle> overlaidRuns() const;
    // The run of the table's current row.
    std::optional<int64_t> currentRun() const;
    void setOverlaid(int64_t runId, bool on);

signals:
    void overlayChanged();
    void duplicateRequested(qint64 runId);
    void snapshotRequested(qint64 runId);
    void stopRequested(qint64 runId);
    // Show the warm-start sweep the run belongs to.
    void sweepRequested(qint64 runId);

private:
    void refreshRows();
    void refreshDiff();
    void showContextMenu(const QPoint& pos);

    RunDataPoller* poller_;
    RunTableModel* model_;
    QSortFilterProxyModel* proxy_;
    QTableView* table_;
    ConfigDiffModel* diff_;
    QTableView* diffView_;
    QCheckBox* differencesOnly_;
};

}  // namespace relora::ui
