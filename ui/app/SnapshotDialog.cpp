#include "ui/app/SnapshotDialog.h"

#include <QComboBox>
#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QToolButton>

#include <functional>

namespace relora::ui {

SnapshotDialog::SnapshotDialog(const QString& runName, bool training, const std::vector<int64_t>& checkpointSteps,
                               std::function<QString(int64_t)> defaultPath, QWidget* parent)
    : QDialog(parent) {
    setWindowTitle(tr("Export HDF5 snapshot"));
    step_ = new QComboBox;
    if (training) step_->addItem(tr("the step it trains now"), -1);
    for (auto it = checkpointSteps.rbegin(); it != checkpointSteps.rend(); ++it)
        step_->addItem(tr("step %1 (checkpoint)").arg(*it), static_cast<qlonglong>(*it));
    path_ = new QLineEdit;
    path_->setMinimumWidth(420);
    auto* browse = new QToolButton;
    browse->setText(tr("…"));
    connect(browse, &QToolButton::clicked, this, [this] {
        const QString chosen = QFileDialog::getSaveFileName(this, windowTitle(), path_->text(), tr("HDF5 (*.h5)"));
        if (!chosen.isEmpty()) path_->setText(chosen);
    });
    connect(step_, &QComboBox::currentIndexChanged, this,
            [this, defaultPath] { path_->setText(defaultPath(step_->currentData().toLongLong())); });
    path_->setText(defaultPath(step_->currentData().toLongLong()));

    auto* pathRow = new QHBoxLayout;
    pathRow->addWidget(path_, 1);
    pathRow->addWidget(browse);
    auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
    buttons->button(QDialogButtonBox::Ok)->setText(tr("Export"));
    buttons->button(QDialogButtonBox::Ok)->setEnabled(step_->count() > 0);
    connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);

    auto* form = new QFormLayout(this);
    form->addRow(tr("Run"), new QLabel(runName));
    form->addRow(tr("Step"), step_);
    if (step_->count() == 0)
        form->addRow(QString(), new QLabel(tr("This run has no checkpoint yet: it writes one when it ends or stops.")));
    form->addRow(tr("File"), pathRow);
    form->addRow(buttons);
}

std::optional<int64_t> SnapshotDialog::step() const {
    const qlonglong s = step_->currentData().toLongLong();
    if (s < 0) return std::nullopt;
    return s;
}

QString SnapshotDialog::path() const { return path_->text().trimmed(); }

}  // namespace relora::ui
