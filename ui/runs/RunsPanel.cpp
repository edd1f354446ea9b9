#include "ui/runs/RunsPanel.h"

#include "core/Experiments.h"
#include "ui/data/RunDataPoller.h"
#include "ui/runs/ConfigDiffModel.h"
#include "ui/runs/RunPalette.h"
#include "ui/runs/RunTableModel.h"

#include <QCheckBox>
#include <QHeaderView>
#include <QMenu>
#include <QSortFilterProxyModel>
#include <QTableView>
#include <QVBoxLayout>

namespace relora::ui {

RunsPanel::RunsPanel(RunDataPoller* poller, QWidget* parent) : QTabWidget(parent), poller_(poller) {
    model_ = new RunTableModel(this);
    proxy_ = new QSortFilterProxyModel(this);
    proxy_->setSourceModel(model_);
    proxy_->setSortRole(RunTableModel::SortRole);
    table_ = new QTableView;
    table_->setObjectName(QStringLiteral("runTable"));
    table_->setModel(proxy_);
    table_->setSortingEnabled(true);
    table_->sortByColumn(RunTableModel::Id, Qt::AscendingOrder);
    table_->setSelectionBehavior(QAbstractItemView::SelectRows);
    table_->setSelectionMode(QAbstractItemView::SingleSelection);
    table_->setAlternatingRowColors(true);
    table_->verticalHeader()->hide();
    table_->verticalHeader()->setDefaultSectionSize(table_->fontMetrics().height() + 6);
    table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    table_->horizontalHeader()->setStretchLastSection(true);
    table_->setContextMenuPolicy(Qt::CustomContextMenu);
    connect(table_, &QTableView::customContextMenuRequested, this, &RunsPanel::showContextMenu);
    addTab(table_, tr("Runs"));

    diff_ = new ConfigDiffModel(this);
    diffView_ = new QTableView;
    diffView_->setModel(diff_);
    diffView_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
    diffView_->verticalHeader()->setDefaultSectionSize(diffView_->fontMetrics().height() + 4);
    differencesOnly_ = new QCheckBox(tr("Differences only"));
    differencesOnly_->setChecked(true);
    diff_->setDifferencesOnly(true);
    connect(differencesOnly_, &QCheckBox::toggled, diff_, &ConfigDiffModel::setDifferencesOnly);
    auto* diffPage = new QWidget;
    auto* diffLayout = new QVBoxLayout(diffPage);
    diffLayout->setContentsMargins(2, 2, 2, 2);
    diffLayout->addWidget(differencesOnly_);
    diffLayout->addWidget(diffView_, 1);
    addTab(diffPage, tr("Config diff of the overlaid runs"));

    connect(poller_, &RunDataPoller::runsChanged, this, &RunsPanel::refreshRows);
    connect(model_, &RunTableModel::checkedRunsChanged, this, [this] {
        refreshDiff();
        emit overlayChanged();
    });
    refreshRows();
}

void RunsPanel::refreshRows() {
    std::vector<RunRow> rows;
    for (const store::RunSummary& s : poller_->runs()) {
        const StoredSpec* stored = poller_->spec(s.id);
        rows.push_back({s, stored ? stored->spec : std::nullopt});
    }
    model_->setRuns(std::move(rows));
    refreshDiff();
    emit overlayChanged();   // names may have changed; the charts skip what did not
}

void RunsPanel::refreshDiff() {
    std::vector<ConfigDiffModel::Run> runs;
    for (const RunStyle& r : overlaidRuns())
        if (const StoredSpec* stored = poller_->spec(r.id)) runs.push_back({r.id, r.name, stored->json});
    diff_->setRuns(std::move(runs));
}

std::vector<RunStyle> RunsPanel::overlaidRuns() const {
    std::vector<RunStyle> out;
    for (int64_t id : model_->checkedRuns()) {
        const RunRow* row = model_->row(id);
        const QString name = row ? QString::fromStdString(row->summary.name) : tr("run");
        out.push_back({id, QStringLiteral("%1 #%2").arg(name).arg(id), runColor(id)});
    }
    return out;
}

std::optional<int64_t> RunsPanel::currentRun() const {
    const QModelIndex index = table_->currentIndex();
    if (!index.isValid()) return std::nullopt;
    return model_->runAt(proxy_->mapToSource(index).row());
}

void RunsPanel::setOverlaid(int64_t runId, bool on) { model_->setChecked(runId, on); }

void RunsPanel::showContextMenu(const QPoint& pos) {
    const QModelIndex index = table_->indexAt(pos);
    if (!index.isValid()) return;
    const int64_t id = model_->runAt(proxy_->mapToSource(index).row());
    QMenu menu(this);
    menu.addAction(tr("Edit a copy in the run editor"), this, [this, id] { emit duplicateRequested(id); });
    menu.addAction(QIcon(QStringLiteral(":/icons/snapshot.svg")), tr("Export HDF5 snapshot…"), this,
                   [this, id] { emit snapshotRequested(id); });
    menu.addAction(tr("Show only this run in the charts"), this, [this, id] {
        for (int64_t other : std::set<int64_t>(model_->checkedRuns())) model_->setChecked(other, false);
        model_->setChecked(id, true);
    });
    if (const StoredSpec* stored = poller_->spec(id); stored && stored->spec && experiments::sweepStem(*stored->spec))
        menu.addAction(tr("Show its warm-start sweep"), this, [this, id] { emit sweepRequested(id); });
    if (const RunRow* row = model_->row(id); row && (row->summary.status == "running" || row->summary.status == "queued"))
        menu.addAction(QIcon(QStringLiteral(":/icons/stop.svg")), tr("Stop"), this, [this, id] { emit stopRequested(id); });
    menu.exec(table_->viewport()->mapToGlobal(pos));
}

}  // namespace relora::ui
