#include "ui/editor/FormFields.h"

#include <QLineEdit>
#include <QLocale>
#include <QSpinBox>

namespace relora::ui {

QSpinBox* makeIntField(int minimum, int maximum) {
    auto* box = new QSpinBox;
    box->setRange(minimum, maximum);
    box->setGroupSeparatorShown(false);
    box->setKeyboardTracking(true);
    return box;
}

QLineEdit* makeNumberField() {
    auto* field = new QLineEdit;
    field->setMaximumWidth(140);
    return field;
}

void setNumber(QLineEdit* field, double value) {
    // Seven digits: a float spec value (0.001f) reads as 0.001, not 0.0010000000474974513.
    field->setText(QLocale::c().toString(value, 'g', 7));
}

std::optional<double> readNumber(const QLineEdit* field, const char* path, std::vector<SpecError>& problems) {
    bool ok = false;
    const double value = QLocale::c().toDouble(field->text().trimmed(), &ok);
    if (ok) return value;
    problems.push_back({path, "'" + field->text().toStdString() + "' is not a number (write e.g. 0.001 or 1e-3)"});
    return std::nullopt;
}

std::optional<uint64_t> readUnsigned(const QLineEdit* field, const char* path, std::vector<SpecError>& problems) {
    bool ok = false;
    const qulonglong value = field->text().trimmed().toULongLong(&ok);
    if (ok) return value;
    problems.push_back({path, "'" + field->text().toStdString() + "' is not a whole number from 0 up"});
    return std::nullopt;
}

std::optional<std::vector<int>> readIntList(const QLineEdit* field, const char* path,
                                            std::vector<SpecError>& problems) {
    std::vector<int> out;
    const auto parts = field->text().split(QLatin1Char(','), Qt::SkipEmptyParts);
    for (const QString& part : parts) {
        bool ok = false;
        const int value = part.trimmed().toInt(&ok);
        if (!ok) {
            problems.push_back({path, "'" + part.trimmed().toStdString() + "' is not a step number; list steps as 300, 600, 900"});
            return std::nullopt;
        }
        out.push_back(value);
    }
    return out;
}

}  // namespace relora::ui
