// A run's spec as the database holds it: the JSON text, and the spec read
// from it, or why it could not be read (a spec written by a newer program,
// or a damaged row). Nothing that shows runs may fail on one bad spec.
#pragma once

#include "core/RunSpec.h"

#include <QString>

#include <optional>
#include <string>

namespace relora::ui {

struct StoredSpec {
    std::string json;
    std::optional<RunSpec> spec;
    QString error;                 // set when spec is empty

    double tokensPerStep() const;  // batch × context, 0 when unknown
};

StoredSpec readStoredSpec(std::string json);

}  // namespace relora::ui
