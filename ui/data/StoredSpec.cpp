#include "ui/data/StoredSpec.h"

namespace relora::ui {

double StoredSpec::tokensPerStep() const {
    if (!spec) return 0;
    return static_cast<double>(spec->train.batch) * static_cast<double>(spec->model.context);
}

StoredSpec readStoredSpec(std::string json) {
    StoredSpec out;
    out.json = std::move(json);
    try {
        out.spec = fromJson(out.json);
    } catch (const std::exception& e) {
        out.error = QString::fromStdString(e.what());
    }
    return out;
}

}  // namespace relora::ui
