#include "ui/app/Resources.h"

#include <QtGlobal>

// Q_INIT_RESOURCE must be used outside any namespace.
static void initResourcesOnce() { Q_INIT_RESOURCE(workbench); }

namespace relora::ui {

void initWorkbenchResources() {
    static const bool done = (initResourcesOnce(), true);
    (void)done;
}

}  // namespace relora::ui
