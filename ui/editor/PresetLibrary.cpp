#include "ui/editor/PresetLibrary.h"

#include <QDir>
#include <QFile>

namespace relora::ui {

std::vector<Preset> bundledPresets(QStringList* problems) {
    std::vector<Preset> out;
    const QDir dir(QStringLiteral(":/presets"));
    for (const QString& name : dir.entryList({QStringLiteral("*.json")}, QDir::Files, QDir::Name)) {
        QFile file(dir.filePath(name));
        try {
            if (!file.open(QIODevice::ReadOnly)) throw std::runtime_error("cannot be opened");
            RunSpec spec = fromJson(file.readAll().toStdString());
            out.push_back({QString::fromStdString(spec.name), std::move(spec)});
        } catch (const std::exception& e) {
            if (problems) *problems << name + ": " + QString::fromStdString(e.what());
        }
    }
    return out;
}

}  // namespace relora::ui
