#include "ui/editor/FieldErrors.h"

#include <QLabel>
#include <QVBoxLayout>
#include <QWidget>

namespace relora::ui {

FieldErrors::FieldErrors(QObject* parent) : QObject(parent) {}

QWidget* FieldErrors::attach(const QString& path, QWidget* field) {
    auto* box = new QWidget;
    auto* layout = new QVBoxLayout(box);
    layout->setContentsMargins(0, 0, 0, 0);
    layout->setSpacing(1);
    layout->addWidget(field);
    auto* label = new QLabel;
    label->setObjectName(QStringLiteral("fieldError"));
    label->setWordWrap(true);
    label->setStyleSheet(QStringLiteral("color: #c62828; font-size: small;"));
    label->hide();
    layout->addWidget(label);
    fields_.insert(path, {field, label, field->palette(), field->toolTip()});
    return box;
}

std::vector<SpecError> FieldErrors::show(const std::vector<SpecError>& errors) {
    QHash<QString, QStringList> reasons;
    std::vector<SpecError> elsewhere;
    for (const SpecError& e : errors) {
        const QString path = QString::fromStdString(e.field);
        if (fields_.contains(path))
            reasons[path] << QString::fromStdString(e.message);
        else
            elsewhere.push_back(e);
    }
    for (auto it = fields_.begin(); it != fields_.end(); ++it) {
        Field& f = it.value();
        if (!f.widget || !f.label) continue;
        const QString text = reasons.value(it.key()).join(QLatin1Char('\n'));
        f.label->setText(text);
        f.label->setVisible(!text.isEmpty());
        QPalette palette = f.palette;
        if (!text.isEmpty()) {
            palette.setColor(QPalette::Base, QColor(255, 228, 228));
            palette.setColor(QPalette::Button, QColor(255, 228, 228));
            palette.setColor(QPalette::Window, QColor(255, 238, 238));
        }
        f.widget->setPalette(palette);
        f.widget->setAutoFillBackground(!text.isEmpty());
        f.widget->setToolTip(text.isEmpty() ? f.tooltip : it.key() + ": " + text);
    }
    return elsewhere;
}

QWidget* FieldErrors::field(const QString& path) const {
    const auto it = fields_.find(path);
    return it == fields_.end() ? nullptr : it->widget.data();
}

QString FieldErrors::message(const QString& path) const {
    const auto it = fields_.find(path);
    return it == fields_.end() || !it->label ? QString() : it->label->text();
}

}  // namespace relora::ui
