#include "ui/editor/MethodComparison.h"

namespace relora::ui {

std::vector<RunSpec> matchedMethodRuns(const RunSpec& base) {
    std::string stem = base.name;
    for (Method m : {Method::FullRank, Method::LoRA, Method::ReLoRA}) {
        const std::string suffix = "-" + toString(m);
        if (stem.size() > suffix.size() && stem.ends_with(suffix)) {
            stem.resize(stem.size() - suffix.size());
            break;
        }
    }
    std::vector<RunSpec> runs;
    for (Method m : {Method::FullRank, Method::LoRA, Method::ReLoRA}) {
        RunSpec spec = base;
        spec.method.kind = m;
        spec.name = stem + "-" + toString(m);
        runs.push_back(std::move(spec));
    }
    return runs;
}

}  // namespace relora::ui
