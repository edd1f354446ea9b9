// The icons and presets compiled into relora_ui (resources/workbench.qrc).
// A static library's resources must be registered by hand before use.
#pragma once

namespace relora::ui {

void initWorkbenchResources();

}  // namespace relora::ui
