// Every run keeps one colour wherever it is drawn (charts, legend, run
// table): the colour follows from the run's id, so it survives restarts of
// the workbench and does not change when other runs are shown or hidden.
#pragma once

#include <QColor>

#include <cstdint>

namespace relora::ui {

// Ten colours that stay apart from one another on white (Tableau 10):
// consecutive ids, the usual case for runs compared together, never share one.
QColor runColor(int64_t runId);

}  // namespace relora::ui
