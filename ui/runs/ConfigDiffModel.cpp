#include "ui/runs/ConfigDiffModel.h"

#include <nlohmann/json.hpp>

#include <QBrush>
#include <QColor>
#include <QFont>

#include <algorithm>
#include <functional>
#include <map>

namespace relora::ui {
namespace {

using Json = nlohmann::ordered_json;

std::string valueText(const Json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (!v.is_array()) return v.dump();
    std::string out;
    for (const Json& item : v) out += (out.empty() ? "" : ", ") + valueText(item);
    return out.empty() ? "(none)" : out;
}

void collect(const Json& node, const std::string& path, std::vector<std::pair<std::string, std::string>>& out) {
    if (!node.is_object()) {
        out.emplace_back(path, valueText(node));
        return;
    }
    for (const auto& item : node.items()) collect(item.value(), path.empty() ? item.key() : path + "." + item.key(), out);
}

}  // namespace

ConfigDiffModel::ConfigDiffModel(QObject* parent) : QAbstractTableModel(parent) {}

std::vector<std::pair<std::string, std::string>> ConfigDiffModel::flatten(const std::string& json) {
    std::vector<std::pair<std::string, std::string>> out;
    const Json root = Json::parse(json, nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded() || !root.is_object()) {
        out.emplace_back("(error)", "the stored spec is not a JSON object");
        return out;
    }
    collect(root, "", out);
    return out;
}

void ConfigDiffModel::setRuns(std::vector<Run> runs) {
    if (runs == runs_) return;   // polled often: keep the view's scroll position
    beginResetModel();
    runs_ = std::move(runs);
    rebuild();
    endResetModel();
}

void ConfigDiffModel::setDifferencesOnly(bool on) {
    if (on == differencesOnly_) return;
    beginResetModel();
    differencesOnly_ = on;
    rebuild();
    endResetModel();
}

void ConfigDiffModel::rebuild() {
    all_.clear();
    std::map<std::string, size_t> rowOf;
    for (size_t c = 0; c < runs_.size(); ++c) {
        for (auto& [field, value] : flatten(runs_[c].json)) {
            auto [it, added] = rowOf.emplace(field, all_.size());
            if (added) all_.push_back({field, std::vector<QString>(runs_.size()), false});
            all_[it->second].values[c] = QString::fromStdString(value);
        }
    }
    shown_.clear();
    for (Row& row : all_) {
        row.differs = std::adjacent_find(row.values.begin(), row.values.end(), std::not_equal_to<>()) !=
                      row.values.end();
        if (!differencesOnly_ || row.differs) shown_.push_back(&row);
    }
}

QString ConfigDiffModel::field(int row) const {
    return row >= 0 && row < rowCount() ? QString::fromStdString(shown_[static_cast<size_t>(row)]->field) : QString();
}

bool ConfigDiffModel::rowDiffers(int row) const {
    return row >= 0 && row < rowCount() && shown_[static_cast<size_t>(row)]->differs;
}

int ConfigDiffModel::rowCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(shown_.size());
}

int ConfigDiffModel::columnCount(const QModelIndex& parent) const {
    return parent.isValid() ? 0 : static_cast<int>(runs_.size());
}

QVariant ConfigDiffModel::data(const QModelIndex& index, int role) const {
    if (!index.isValid() || index.row() >= rowCount() || index.column() >= columnCount()) return {};
    const Row& row = *shown_[static_cast<size_t>(index.row())];
    switch (role) {
    case Qt::DisplayRole: return row.values[static_cast<size_t>(index.column())];
    case Qt::BackgroundRole: return row.differs ? QBrush(QColor(255, 244, 204)) : QVariant();
    case Qt::FontRole:
        if (!row.differs) return {};
        {
            QFont bold;
            bold.setBold(true);
            return bold;
        }
    default: return {};
    }
}

QVariant ConfigDiffModel::headerData(int section, Qt::Orientation orientation, int role) const {
    if (role != Qt::DisplayRole) return {};
    if (orientation == Qt::Horizontal)
        return section < columnCount() ? runs_[static_cast<size_t>(section)].title : QVariant();
    return field(section);
}

}  // namespace relora::ui
