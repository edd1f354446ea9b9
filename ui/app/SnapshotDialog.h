// Asks which step of a run to export as an HDF5 snapshot, and where: the
// step it trains now (when it trains) or one of its checkpoints.
#pragma once

#include <QDialog>

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

class QComboBox;
class QLineEdit;

namespace relora::ui {

class SnapshotDialog : public QDialog {
    Q_OBJECT
public:
    // `checkpointSteps` ascending; `defaultPath(step)` names the file for a
    // step (−1: the live step).
    SnapshotDialog(const QString& runName, bool training, const std::vector<int64_t>& checkpointSteps,
                   std::function<QString(int64_t)> defaultPath, QWidget* parent = nullptr);

    // Empty: the step the run trains now.
    std::optional<int64_t> step() const;
    QString path() const;

private:
    QComboBox* step_;
    QLineEdit* path_;
};

}  // namespace relora::ui
