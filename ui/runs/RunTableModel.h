// Every run in the database, one row each: method, status, progress, key
// settings, latest and best validation loss. The check box of a row chooses
// whether the run is overlaid in the charts; the swatch shows its colour.
// Rows are matched by run id on update, so checks and selection survive the
// poller's refreshes.
#pragma once

#include "core/RunSpec.h"
#include "core/store/RunStore.h"

#include <QAbstractTableModel>

#include <cstdint>
#include <optional>
#include <set>
#include <vector>

namespace relora::ui {

struct RunRow {
    store::RunSummary summary;
    std::optional<RunSpec> spec;    // empty when the stored spec cannot be read
};

class RunTableModel : public QAbstractTableModel {
    Q_OBJECT
public:
    enum Column { Name, Id, Method, Status, Progress, Model, Rank, LearningRate, TrainLoss, ValLoss, BestValLoss,
                  Device, ColumnCount };
    // Numbers to sort by (the display text of "1.2e-3" does not sort).
    static constexpr int SortRole = Qt::UserRole + 1;

    explicit RunTableModel(QObject* parent = nullptr);

    void setRuns(std::vector<RunRow> runs);
    int64_t runAt(int row) const;
    int rowOf(int64_t runId) const;   // −1 when absent
    const RunRow* row(int64_t runId) const;

    const std::set<int64_t>& checkedRuns() const { return checked_; }
    void setChecked(int64_t runId, bool checked);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;
    Qt::ItemFlags flags(const QModelIndex& index) const override;
    bool setData(const QModelIndex& index, const QVariant& value, int role = Qt::EditRole) override;

signals:
    void checkedRunsChanged();

private:
    QVariant display(const RunRow& r, int column) const;
    QVariant sortValue(const RunRow& r, int column) const;

    std::vector<RunRow> rows_;
    std::set<int64_t> checked_;
};

}  // namespace relora::ui
