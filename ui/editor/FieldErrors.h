// Shows a spec's problems where they are: the field that holds the bad
// value is tinted and carries the reason, both as its tooltip and as a line
// of text under it. The reasons are the engine's own (validate()).
#pragma once

#include "core/RunSpec.h"

#include <QHash>
#include <QObject>
#include <QPalette>
#include <QPointer>
#include <QString>

#include <vector>

class QLabel;
class QWidget;

namespace relora::ui {

class FieldErrors : public QObject {
    Q_OBJECT
public:
    explicit FieldErrors(QObject* parent = nullptr);

    // Puts `field` above a hidden message line and returns the pair, to be
    // placed in the form instead of the field. `path` is the spec field it
    // edits ("method.rank").
    QWidget* attach(const QString& path, QWidget* field);

    // Marks the fields named by `errors` (clearing the others). Returns the
    // errors that no attached field shows.
    std::vector<SpecError> show(const std::vector<SpecError>& errors);

    // The reason shown at a field now; empty when the field is fine.
    QString message(const QString& path) const;
    // The widget attached for a spec field (null when none is).
    QWidget* field(const QString& path) const;

private:
    struct Field {
        QPointer<QWidget> widget;
        QPointer<QLabel> label;
        QPalette palette;          // to restore when the value becomes good
        QString tooltip;
    };
    QHash<QString, Field> fields_;
};

}  // namespace relora::ui
