// RunSpec: enum names, presets and the default spec (DESIGN §2, §4-5).
// The JSON form lives in RunSpecJson.cpp, validation in RunSpecValidation.cpp.
#include "core/RunSpec.h"

#include "core/RunSpecInternal.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <stdexcept>

namespace relora {

namespace {

constexpr std::array<const char*, 3> kMethodNames{"full", "lora", "relora"};
constexpr std::array<const char*, 3> kPruneNames{"reset", "random", "magnitude"};
constexpr std::array<const char*, kTargetCount> kTargetNames{"wq", "wk", "wv", "wo",
                                                             "gate", "up", "down"};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

// ---- presets ---------------------------------------------------------------

struct Preset {
    const char* name;
    int dModel, dFF, heads, layers, context;
    int rank;    // the ReLoRA reference uses 128 at 60M and up; tiny stays small
    int batch;
    float lr;    // larger models want a lower peak learning rate
};

constexpr std::array<Preset, 3> kPresets{{
    {"tiny", 256, 688, 4, 4, 256, 32, 8, 1e-3f},
    {"60m", 512, 1376, 8, 8, 512, 128, 32, 5e-4f},
    {"130m", 768, 2048, 12, 12, 512, 128, 32, 3e-4f},
}};

const Preset* findPreset(const std::string& name) {
    for (const Preset& p : kPresets)
        if (name == p.name) return &p;
    return nullptr;
}

void applyPreset(RunSpec& spec, const Preset& p) {
    spec.model.preset = p.name;
    spec.model.dModel = p.dModel;
    spec.model.dFF = p.dFF;
    spec.model.heads = p.heads;
    spec.model.layers = p.layers;
    spec.model.context = p.context;
    spec.method.rank = p.rank;
}

}  // namespace

bool detail::isKnownPreset(const std::string& name) { return name == "custom" || findPreset(name); }

// ---- names -----------------------------------------------------------------

std::string toString(Method m) { return kMethodNames[static_cast<size_t>(m)]; }
std::string toString(PruneMode m) { return kPruneNames[static_cast<size_t>(m)]; }
std::string toString(TargetMatrix t) { return kTargetNames[static_cast<size_t>(t)]; }

std::optional<Method> parseMethod(const std::string& s) {
    const std::string k = lower(s);
    if (k == "full-rank" || k == "fullrank") return Method::FullRank;
    for (size_t i = 0; i < kMethodNames.size(); ++i)
        if (k == kMethodNames[i]) return static_cast<Method>(i);
    return std::nullopt;
}

std::optional<PruneMode> parsePruneMode(const std::string& s) {
    const std::string k = lower(s);
    for (size_t i = 0; i < kPruneNames.size(); ++i)
        if (k == kPruneNames[i]) return static_cast<PruneMode>(i);
    return std::nullopt;
}

std::optional<TargetMatrix> parseTarget(const std::string& s) {
    std::string k = lower(s);
    if (k == "q" || k == "k" || k == "v" || k == "o") k = "w" + k;
    for (size_t i = 0; i < kTargetNames.size(); ++i)
        if (k == kTargetNames[i]) return static_cast<TargetMatrix>(i);
    return std::nullopt;
}

// ---- RunSpec ---------------------------------------------------------------

bool RunSpec::targets(TargetMatrix t) const {
    return std::find(method.targets.begin(), method.targets.end(), t) != method.targets.end();
}

std::vector<int> RunSpec::restartSchedule() const {
    if (method.kind != Method::ReLoRA) return {};
    if (!relora.restartSteps.empty()) return relora.restartSteps;
    std::vector<int> steps;
    if (relora.resetInterval < 1) return steps;   // invalid; validate() says so, and looping forever helps no one
    for (int64_t s = int64_t{relora.warmStartSteps} + relora.resetInterval; s < train.steps; s += relora.resetInterval)
        steps.push_back(static_cast<int>(s));
    return steps;
}

bool applyModelPreset(RunSpec& spec, const std::string& preset) {
    const Preset* p = findPreset(preset);
    if (!p) return false;
    applyPreset(spec, *p);
    return true;
}

RunSpec defaultSpec(Method method, const std::string& preset) {
    const Preset* p = findPreset(preset);
    if (!p) throw std::invalid_argument("unknown model preset '" + preset + "' (expected tiny, 60m or 130m)");
    RunSpec spec;
    applyPreset(spec, *p);
    spec.name = std::string(p->name) + "-" + toString(method);
    spec.method.kind = method;
    spec.optim.lr = p->lr;
    spec.train.batch = p->batch;
    return spec;
}

RunSpec syntheticSpec(Method method, int dModel, int dFF, int heads, int layers, int context) {
    RunSpec s = defaultSpec(method, "tiny");
    s.model.preset = "custom";
    s.model.dModel = dModel;
    s.model.dFF = dFF;
    s.model.heads = heads;
    s.model.layers = layers;
    s.model.context = context;
    s.data.synthetic = true;
    return s;
}

}  // namespace relora
