// RunSpec: the one complete description of a training run (DESIGN §2).
// The GUI editor, the CLI, presets and the run database all use this type;
// its JSON form carries `schema_version` so stored specs can be migrated.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace relora {

inline constexpr int kRunSpecSchemaVersion = 1;

enum class Method { FullRank, LoRA, ReLoRA };
enum class PruneMode { Reset, Random, Magnitude };

// The seven matrices per layer that can be made low-rank.
enum class TargetMatrix { Wq, Wk, Wv, Wo, Gate, Up, Down };
inline constexpr int kTargetCount = 7;

std::string toString(Method m);            // "full", "lora", "relora"
std::string toString(PruneMode m);         // "reset", "random", "magnitude"
std::string toString(TargetMatrix t);      // "wq", "wk", "wv", "wo", "gate", "up", "down"
std::optional<Method> parseMethod(const std::string& s);
std::optional<PruneMode> parsePruneMode(const std::string& s);
std::optional<TargetMatrix> parseTarget(const std::string& s);

struct ModelSpec {
    std::string preset = "tiny";   // tiny | 60m | 130m | custom
    int dModel = 256;
    int dFF = 688;
    int heads = 4;
    int layers = 4;
    int context = 256;
    int vocab = 256;               // byte-level tokenizer needs >= 256
    float ropeTheta = 10000.0f;
    float normEps = 1e-6f;
    float initStd = 0.02f;
};

struct DataSpec {
    std::string corpus = "/usr/share/games/fortunes";  // file or folder
    bool synthetic = false;        // random tokens, for benchmarks
    double validationFraction = 0.05;
};

struct MethodSpec {
    Method kind = Method::FullRank;
    std::vector<TargetMatrix> targets = {TargetMatrix::Wq, TargetMatrix::Wk, TargetMatrix::Wv,
                                         TargetMatrix::Wo, TargetMatrix::Gate, TargetMatrix::Up,
                                         TargetMatrix::Down};
    int rank = 32;
    float alpha = 32.0f;
    bool rankStabilised = false;   // s = alpha/sqrt(r) instead of alpha/r
    float dropout = 0.0f;
};

struct ReLoRASpec {
    int resetInterval = 500;            // used when restartSteps is empty
    std::vector<int> restartSteps;      // explicit schedule, strictly increasing
    int restartWarmup = 50;             // LR climbs back over this many steps
    PruneMode prune = PruneMode::Magnitude;
    float pruneRatio = 0.9f;            // for random / magnitude
    int warmStartSteps = 0;             // full-rank steps before switching
};

struct OptimSpec {
    float lr = 1e-3f;
    float minLrRatio = 0.1f;
    int warmup = 100;
    float weightDecay = 0.0f;
    float beta1 = 0.9f;
    float beta2 = 0.999f;
    float eps = 1e-8f;
    float clip = 1.0f;                  // <= 0 disables clipping
};

struct TrainSpec {
    int batch = 8;
    int steps = 2000;
    uint64_t seed = 1;
    int evalInterval = 100;             // validation loss + ranks every K steps
    int evalBatches = 8;
    int logInterval = 1;
    float rankThreshold = 0.1f;         // τ for threshold rank / update size
    int snapshotInterval = 0;           // 0 = only at the end
    int checkpointInterval = 0;         // 0 = only on stop / end
    int threads = 0;                    // CPU threads, 0 = OMP_NUM_THREADS, else all cores
};

struct RunSpec {
    int schemaVersion = kRunSpecSchemaVersion;
    std::string name = "run";
    std::string backend = "auto";       // auto | cpu | cuda
    // Matrix products on the GPU: bf16 operands with fp32 accumulation, or
    // fp32 throughout (for checking). The CPU backend always computes fp32.
    std::string precision = "bf16";
    ModelSpec model;
    DataSpec data;
    MethodSpec method;
    ReLoRASpec relora;
    OptimSpec optim;
    TrainSpec train;

    bool isLowRank() const { return method.kind != Method::FullRank; }
    bool targets(TargetMatrix t) const;
    // Steps at which ReLoRA merges and restarts (empty for other methods).
    std::vector<int> restartSchedule() const;
};

// One problem found by validation: the field's JSON path and why it is bad.
struct SpecError {
    std::string field;     // e.g. "method.rank"
    std::string message;   // e.g. "must be between 1 and 256 (the smallest targeted matrix, wq, is 256x256), got 300"
};

// A small "custom" model on synthetic tokens (the defaults of `method`
// otherwise): the engine's own tests, self-checks and benchmarks use it.
RunSpec syntheticSpec(Method method, int dModel, int dFF, int heads, int layers, int context);

// Default spec for a method and a model preset ("tiny", "60m", "130m").
// Throws std::invalid_argument for an unknown preset.
RunSpec defaultSpec(Method method, const std::string& preset);
// Applies a preset's model sizes (and the matching default rank) to `spec`.
bool applyModelPreset(RunSpec& spec, const std::string& preset);

// Every problem of the spec; empty means the spec can start a run.
// `checkCorpus` also looks at the corpus on disk (exists, holds text).
std::vector<SpecError> validate(const RunSpec& spec, bool checkCorpus = true);

// JSON text <-> spec. fromJson throws SpecParseError naming the bad field.
std::string toJson(const RunSpec& spec, int indent = 2);
RunSpec fromJson(const std::string& json);
// Sets one field given as a dotted path ("method.rank", "optim.lr",
// "method.targets=wq,wv") in the JSON text, returning the new JSON text.
std::string applyOverride(const std::string& json, const std::string& assignment);

struct SpecParseError : std::runtime_error {
    SpecParseError(std::string fieldPath, const std::string& why)
        : std::runtime_error(fieldPath.empty() ? why : fieldPath + ": " + why),
          field(std::move(fieldPath)) {}
    std::string field;
};

}  // namespace relora
