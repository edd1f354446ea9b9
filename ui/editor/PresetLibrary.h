// The run specs that ship with the workbench (resources/presets/*.json,
// compiled in under :/presets): starting points for the editor.
#pragma once

#include "core/RunSpec.h"

#include <QString>
#include <QStringList>

#include <vector>

namespace relora::ui {

struct Preset {
    QString title;   // the spec's name
    RunSpec spec;
};

// By file name. A preset that does not read is left out and named in
// `problems` (a packaging mistake, caught by the tests).
std::vector<Preset> bundledPresets(QStringList* problems = nullptr);

}  // namespace relora::ui
