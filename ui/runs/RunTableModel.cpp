#include "ui/runs/RunTableModel.h"

#include "ui/runs/RunPalette.h"

#include <QBrush>
#include <QFont>

#include <algorithm>
#include <unordered_set>

namespace relora::ui {
namespace {

QString methodName(const RunRow& r) {
    if (r.summary.method == "full") return QObject::tr("full-rank");
    if (r.summary.method == "lora") return QStringLiteral("LoRA");
    if (r.summary.method == "relora") return QStringLiteral("ReLoRA");
    return QString::fromStdString(r.summary.method);
}

QVariant loss(const std::optional<double>& v) {
    if (!v) return {};
    return QString::number(*v, 'f', 4);
}

QColor statusColor(const std::string& status) {
    if (status == "running") return QColor(0x1f, 0x6f, 0xd0);
    if (status == "finished") return QColor(0x2e, 0x7d, 0x32);
    if (status == "failed") return QColor(0xc6, 0x28, 0x28);
    if (status == "interrupted") return QColor(0xb2, 0x6a, 0x00);
    return QColor(0x60, 0x60, 0x60);
}

}  // namespace

RunTableModel::RunTableModel(QObject* parent) : QAbstractTableModel(parent) {}

void RunTableModel::setRuns(std::vector<RunRow> runs) {
    // Both lists are ordered by id, so the surviving rows keep their order:
    // remove the rows that are gone, then insert the new ones in place.
    std::unordered_set<int64_t> incoming;
    for (const RunRow& r : runs) incoming.insert(r.summary.id);
    bool uncheck = false;
    for (int i = static_cast<int>(rows_.size()) - 1; i >= 0; --i) {
        const int64_t id = rows_[static_cast<size_t>(i)].summary.id;
        if (incoming.count(id)) continue;
        beginRemoveRows({}, i, i);
        rows_.erase(rows_.begin() + i);
        endRemoveRows();
        uncheck = checked_.erase(id) > 0 || uncheck;
    }
    for (size_t i = 0; i < runs.size(); ++i) {
        if (i < rows_.size() && rows_[i].summary.id == runs[i].summary.id) {
            rows_[i] = std::move(runs[i]);
            continue;
        }
        beginInsertRows({}, static_cast<int>(i), static_cast<int>(i));
        rows_.insert(rows_.begin() + static_cast<long>(i), std::move(runs[i]));
        endInsertRows();
    }
    if (!rows_.empty()) emit dataChanged(index(0, 0), index(rowCount() - 1, ColumnCount - 1));
    if (uncheck) emit checkedRunsChanged();
}

int64_t RunTableModel::runAt(int row) const {
    return row >= 0 && row < rowCount() ? rows_[static_cast<size_t>(row)].summary.id : 0;
}

int RunTableModel::rowOf(int64_t runId) const {
    const auto it = std::find_if(rows_.begin(), rows_.end(), [&](const RunRow& r) { return r.summary.id == runId; });
    return it == rows_.end() ? -1 : static_cast<int>(it - rows_.begin());
}

const RunRow* RunTableModel::row(int64_t runId) const {
    const int r = rowOf(runId);
    return r < 0 ? nullptr : &rows_[static_cast<size_t>(r)];
}

void RunTableModel::setChecked(int64_t runId, bool checked) {
    const bool changed = checked ? checked_.insert(runId).second : checked_.erase(runId) > 0;
    if (!changed) return;
    if (const int r = rowOf(runId); r >= 0) emit dataChanged(index(r, Name), index(r, Name), {Qt::CheckStateRole});
    emit checkedRunsChanged();
}

int RunTableModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(rows_.size());
}

int RunTableModel::columnCount(const QModelIndex& parent) const { return parent.isValid() ? 0 : ColumnCount; }

QVariant RunTableModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (orientation != Qt::Horizontal || role != Qt::DisplayRole) return {};
    static const char* const kTitles[ColumnCount] = {"Run", "Id", "Method", "Status", "Step", "Model", "Rank",
                                                     "LR", "Train loss", "Val loss", "Best val", "Device"};
    return tr(kTitles[section]);
}

Qt::ItemFlags RunTableModel::flags(const QModelIndex& index) const {
    Qt::ItemFlags f = Qt::ItemIsEnabled | Qt::ItemIsSelectable;
    if (index.column() == Name) f |= Qt::ItemIsUserCheckable;
    return f;
}

bool RunTableModel::setData(const QModelIndex& index, const QVariant& value, int role) {
    if (!index.isValid() || index.column() != Name || role != Qt::CheckStateRole) return false;
    setChecked(runAt(index.row()), value.value<Qt::CheckState>() == Qt::Checked);
    return true;
}

QVariant RunTableModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rowCount()) return {};
    const RunRow& r = rows_[static_cast<size_t>(index.row())];
    const int column = index.column();
    switch (role) {
    case Qt::DisplayRole: return display(r, column);
    case SortRole: return sortValue(r, column);
    case Qt::CheckStateRole:
        if (column == Name) return checked_.count(r.summary.id) ? Qt::Checked : Qt::Unchecked;
        return {};
    case Qt::DecorationRole:
        if (column == Name) return runColor(r.summary.id);
        return {};
    case Qt::ForegroundRole:
        if (column == Status) return QBrush(statusColor(r.summary.status));
        return {};
    case Qt::FontRole:
        if (column == Status && r.summary.status == "running") {
            QFont bold;
            bold.setBold(true);
            return bold;
        }
        return {};
    case Qt::ToolTipRole:
        if (column == Status || column == Name) return QString::fromStdString(r.summary.message);
        if (column == Rank && r.spec) {
            QStringList targets;
            for (TargetMatrix t : r.spec->method.targets) targets << QString::fromStdString(toString(t));
            return tr("adapters on %1, alpha %2").arg(targets.join(QStringLiteral(", "))).arg(r.spec->method.alpha);
        }
        return {};
    case Qt::TextAlignmentRole:
        if (column >= Progress && column != Model && column != Device)
            return QVariant::fromValue(Qt::AlignRight | Qt::AlignVCenter);
        return {};
    default: return {};
    }
}

QVariant RunTableModel::display(const RunRow& r, int column) const {
    const store::RunSummary& s = r.summary;
    switch (column) {
    case Name: return QString::fromStdString(s.name);
    case Id: return QStringLiteral("#%1").arg(s.id);
    case Method: return methodName(r);
    case Status: return QString::fromStdString(s.status);
    case Progress: {
        const QString done = s.lastStep ? QString::number(*s.lastStep) : QStringLiteral("–");
        return r.spec ? QStringLiteral("%1 / %2").arg(done).arg(r.spec->train.steps) : done;
    }
    case Model: {
        if (!r.spec) return tr("(unreadable spec)");
        const ModelSpec& m = r.spec->model;
        const QString sizes = QStringLiteral("%1·%2·%3·%4").arg(m.dModel).arg(m.dFF).arg(m.heads).arg(m.layers);
        return m.preset == "custom" ? sizes : QString::fromStdString(m.preset) + " " + sizes;
    }
    case Rank:
        if (!r.spec || !r.spec->isLowRank()) return QStringLiteral("–");
        return r.spec->method.rank;
    case LearningRate: return r.spec ? QString::number(r.spec->optim.lr, 'g', 3) : QString();
    case TrainLoss: return loss(s.trainLoss);
    case ValLoss: return loss(s.valLoss);
    case BestValLoss: return loss(s.bestValLoss);
    case Device: return s.device.empty() ? QString::fromStdString(s.backend)
                                         : QString::fromStdString(s.backend + ": " + s.device);
    default: return {};
    }
}

QVariant RunTableModel::sortValue(const RunRow& r, int column) const {
    const auto orMissing = [](const std::optional<double>& v) { return v.value_or(1e300); };
    switch (column) {
    case Id: return static_cast<qlonglong>(r.summary.id);
    case Progress: return static_cast<qlonglong>(r.summary.lastStep.value_or(-1));
    case Rank: return r.spec && r.spec->isLowRank() ? r.spec->method.rank : 0;
    case LearningRate: return r.spec ? r.spec->optim.lr : 0.0;
    case TrainLoss: return orMissing(r.summary.trainLoss);
    case ValLoss: return orMissing(r.summary.valLoss);
    case BestValLoss: return orMissing(r.summary.bestValLoss);
    default: return display(r, column);
    }
}

}  // namespace relora::ui
