// The specs of several runs side by side: one row per field (dotted path,
// "method.rank"), one column per run; rows whose values differ are marked,
// and "differences only" hides the others.
#pragma once

#include <QAbstractTableModel>
#include <QString>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace relora::ui {

class ConfigDiffModel : public QAbstractTableModel {
    Q_OBJECT
public:
    struct Run {
        int64_t id = 0;
        QString title;       // column header
        std::string json;    // the stored spec
        bool operator==(const Run&) const = default;
    };

    explicit ConfigDiffModel(QObject* parent = nullptr);

    void setRuns(std::vector<Run> runs);
    void setDifferencesOnly(bool on);
    bool differencesOnly() const { return differencesOnly_; }
    // The field path of a row.
    QString field(int row) const;
    bool rowDiffers(int row) const;

    // Every leaf of a JSON object as (dotted path, value text); arrays are
    // one value ("wq, wk"). Text that is not JSON gives one "(error)" row.
    static std::vector<std::pair<std::string, std::string>> flatten(const std::string& json);

    int rowCount(const QModelIndex& parent = {}) const override;
    int columnCount(const QModelIndex& parent = {}) const override;
    QVariant data(const QModelIndex& index, int role = Qt::DisplayRole) const override;
    QVariant headerData(int section, Qt::Orientation orientation, int role = Qt::DisplayRole) const override;

private:
    struct Row {
        std::string field;
        std::vector<QString> values;   // per run; empty where a run lacks the field
        bool differs = false;
    };
    void rebuild();

    std::vector<Run> runs_;
    std::vector<Row> all_;
    std::vector<const Row*> shown_;
    bool differencesOnly_ = false;
};

}  // namespace relora::ui
