// The workbench's two experiments as sets of matched run specs (issue 7),
// shared by `relora headline` / `relora sweep` and the GUI's buttons:
//
//   headline  full-rank vs LoRA vs ReLoRA vs ReLoRA with a full-rank warm
//             start, identical in everything else (DESIGN §5, §6);
//   sweep     ReLoRA runs switching from full-rank after given fractions of
//             the steps, to plot final validation loss against the switch.
//
// The runs carry what they are in their names, so a sweep can be found
// again in a run database: "<stem>-sweep-ws<percent>", and "<stem>-sweep-full"
// for the run that stays full-rank to the end (a switch at 100 %).
#pragma once

#include "core/RunSpec.h"

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace relora::experiments {

// Per model preset: the run length, batch shape and LoRA rank of the
// experiments. Everything else (LR, alpha, pruning) is the preset's default.
struct ExperimentDefaults {
    std::string preset;   // "tiny", "60m", "130m"
    int steps, batch, context, rank;
    std::optional<float> lr, alpha;  // the same for every method; unset: the preset's
};

const std::vector<ExperimentDefaults>& experimentDefaults();

// The preset's default ReLoRA spec with the experiment's length, shape and
// rank and the fields derived from the steps, named after the preset.
// Throws std::invalid_argument for a preset without experiment defaults.
RunSpec experimentSpec(const std::string& preset);

// Sets the schedule fields that scale with the run length S: LR warmup S/12,
// ReLoRA restarts every S/4 steps, the LR's climb after a restart S/30 and
// evaluation every S/6. Fields named in `kept` ("optim.warmup",
// "relora.reset_interval", "relora.restart_warmup", "train.eval_interval")
// keep their values.
void deriveFromSteps(RunSpec& spec, const std::set<std::string>& kept = {});

inline constexpr double kDefaultWarmStartFraction = 0.25;
inline const std::vector<double> kDefaultSweepFractions = {0, 0.1, 0.25, 0.5};

// The four headline runs, in this order: "<stem>-full", "<stem>-lora",
// "<stem>-relora" and "<stem>-relora-ws<percent>" (the stem: the base's name
// without an experiment suffix, see experimentStem). They differ from the
// base only in name, method and warm start (round(fraction × steps) full-rank
// steps for the last one, none for the others). Throws std::invalid_argument
// unless 0 < warmStartFraction < 1.
std::vector<RunSpec> headlineRuns(const RunSpec& base, double warmStartFraction = kDefaultWarmStartFraction);

// One ReLoRA run per switch point, ordered by it: round(fraction × steps)
// full-rank steps first; fractions that round to the same step give one run
// (named after the first of them); a switch at the last step or later gives
// the full-rank reference run. Throws std::invalid_argument for an empty list
// or a fraction outside [0, 1].
std::vector<RunSpec> warmStartSweepRuns(const RunSpec& base, const std::vector<double>& fractions);

// "0, 10, 25, 50 %" or "0,0.1,25%": numbers separated by commas or spaces. A
// number followed by '%' (with or without a space) is a percentage; a bare
// one is a fraction, or a percentage when `barePercent`. Throws
// std::invalid_argument naming the first bad item or a value outside [0, 1].
std::vector<double> parseFractions(const std::string& text, bool barePercent);
// 0.25 -> "25 %", 0.125 -> "12.5 %".
std::string percentText(double fraction);

// The base name an experiment's run names grow from: `name` without a
// trailing "-full", "-lora", "-relora", "-relora-ws<n>", "-sweep-ws<n>",
// "-sweep-full" or "-sweep", so that a run's spec can start the experiment
// again under the same names.
std::string experimentStem(const std::string& name);

// The stem of a run warmStartSweepRuns made (read from its name and
// method), or nothing for any other run.
std::optional<std::string> sweepStem(const RunSpec& spec);

// The switch point of a sweep run as a fraction of its steps: its warm start
// over its steps, 1 for the full-rank reference.
double switchFraction(const RunSpec& spec);

// The warm-start sweeps among a database's runs (given in id order), found
// by name: runs named as warmStartSweepRuns names them, with the same stem
// and the same spec but for name, method and warm start. Switch points rise
// within one sweep, so a sweep queued again starts a new group.
struct WarmStartSweep {
    std::string stem;
    std::vector<int64_t> runs;   // ascending ids, switch points rising
};
std::vector<WarmStartSweep> findWarmStartSweeps(const std::vector<std::pair<int64_t, RunSpec>>& runs);

}  // namespace relora::experiments
