// `relora headline` and `relora sweep`: the workbench's two experiments from
// the command line (issue 7). Both build a set of matched run specs with
// core/Experiments.h (as the GUI does), check all of them before anything
// starts, queue them in the run database (so the GUI shows them at once),
// train them one after another through the same path as `relora run`
// (executeRun), and print what they show.
//
//   headline  full-rank vs LoRA vs ReLoRA vs ReLoRA with a full-rank warm
//             start: same seed, data, model, steps and peak LR / cosine; the
//             comparison table of `relora compare` and a verdict on the
//             ordering the ReLoRA paper reports (DESIGN §6).
//   sweep     ReLoRA runs that switch from full-rank after given fractions
//             of the steps; final validation loss against the switch point,
//             as a table and an ASCII plot.
#include "app/cli/Commands.h"
#include "core/Experiments.h"
#include "core/Trainer.h"
#include "core/store/RunFiles.h"
#include "core/store/RunStore.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace relora::cli {
namespace {

// The names of the fields given with --set: the experiments derive the
// others from the number of steps.
std::set<std::string> fieldsSet(const Arguments& a) {
    std::set<std::string> fields;
    for (const auto& s : a.values("set")) fields.insert(s.substr(0, s.find('=')));
    return fields;
}

// The fractions given with `option` ("0.25", "25%"; a usage error when
// they are not), or `fallback` when the option is not given.
std::vector<double> fractionsOf(const Arguments& a, const std::string& option, std::vector<double> fallback) {
    const auto text = a.value(option);
    if (!text) return fallback;
    try {
        return experiments::parseFractions(*text, false);
    } catch (const std::invalid_argument& e) {
        throw UsageError("--" + option + " " + e.what());
    }
}

// The spec the experiments start from: SPEC.json with --set (sweep only), or
// the preset's experiment spec with the --set overrides, --steps, --corpus,
// and the fields derived from the steps. Without a spec file or --set name,
// the runs are named after the model preset.
RunSpec experimentBase(const Arguments& a, bool allowSpecFile) {
    if (!a.positionals().empty() && !allowSpecFile)
        throw UsageError("takes no spec file; choose the model with --preset and change fields with --set");
    if (!a.positionals().empty()) {
        RunSpec spec = loadSpec(a);
        if (a.value("steps")) spec.train.steps = a.intValue("steps", spec.train.steps);
        if (auto c = a.value("corpus")) spec.data.corpus = *c;
        return spec;
    }
    const std::string preset = a.valueOr("preset", "tiny");
    std::string json;
    try {
        json = toJson(experiments::experimentSpec(preset));
    } catch (const std::invalid_argument&) {
        throw UsageError("--preset must be tiny, 60m or 130m, not '" + preset + "'");
    }
    if (a.value("steps")) json = applyOverride(json, "train.steps=" + std::to_string(a.intValue("steps", 0)));
    if (auto c = a.value("corpus")) json = applyOverride(json, "data.corpus=" + *c);
    if (auto b = a.value("backend")) json = applyOverride(json, "backend=\"" + *b + "\"");
    if (auto t = a.value("threads")) json = applyOverride(json, "train.threads=" + *t);
    for (const std::string& s : a.values("set")) json = applyOverride(json, s);
    RunSpec spec = fromJson(json);
    const std::set<std::string> given = fieldsSet(a);
    experiments::deriveFromSteps(spec, given);
    if (!given.count("name")) spec.name = spec.model.preset;
    return spec;
}

// Checks every spec before any run is queued, naming the run each problem
// belongs to; then queues them all.
std::vector<int64_t> validateAndQueue(const std::vector<RunSpec>& specs, const std::string& db) {
    std::ostringstream problems;
    for (const auto& spec : specs)
        for (const auto& e : validate(spec))
            problems << "\n  " << spec.name << ": " << e.field << ": " << e.message;
    if (!problems.str().empty()) throw std::runtime_error("invalid run spec:" + problems.str());
    std::vector<int64_t> ids;
    for (const auto& spec : specs) ids.push_back(queueRun(spec, db));
    return ids;
}

// Trains the queued runs in order. A run stopped by Ctrl-C stops the
// experiment: the runs not started are marked 'stopped'. Returns the exit
// code: 0 all finished, 1 some failed, 130 stopped.
int executeAll(const std::vector<RunSpec>& specs, const std::vector<int64_t>& ids, const std::string& db) {
    int code = 0;
    for (size_t i = 0; i < specs.size(); ++i) {
        std::fprintf(stderr, "\n== %zu/%zu: %s ==\n", i + 1, specs.size(), specs[i].name.c_str());
        int c = 0;
        try {
            c = executeRun(specs[i], db, ids[i], nullptr, "", std::nullopt);
            std::fflush(stdout);  // its result line, before the next run's progress
        } catch (const std::exception& e) {
            // A run that cannot start (no such backend, say): none of the
            // others would either. Leave no run 'queued' behind.
            store::RunStore runs(db);
            for (size_t j = i; j < specs.size(); ++j) {
                try {
                    runs.finish(ids[j], store::RunStatus::Failed, std::string("not started: ") + e.what());
                } catch (const store::StoreError&) {  // this one got as far as 'running' and was closed
                }
            }
            throw;
        }
        if (c == 130) {
            store::RunStore runs(db);
            for (size_t j = i + 1; j < specs.size(); ++j)
                runs.finish(ids[j], store::RunStatus::Stopped, "not started: the experiment was stopped");
            return 130;
        }
        if (c != 0) code = 1;
    }
    return code;
}

std::string idList(const std::vector<int64_t>& ids) {
    std::string s;
    for (int64_t id : ids) s += (s.empty() ? "#" : ", #") + std::to_string(id);
    return s;
}

// The mean over the matrix types of the latest "<prefix>/<type>" values.
std::optional<double> meanOverTypes(store::RunReader& reader, int64_t id, const std::string& prefix,
                                    double* maxOut = nullptr) {
    double sum = 0, most = 0;
    int n = 0;
    for (const char* kind : {"wq", "wk", "wv", "wo", "gate", "up", "down"}) {
        if (const auto p = reader.latest(id, prefix + "/" + kind); p && std::isfinite(p->value)) {
            sum += p->value;
            most = std::max(most, p->value);
            ++n;
        }
    }
    if (maxOut) *maxOut = most;
    return n ? std::optional<double>(sum / n) : std::nullopt;
}

std::string fixed(const std::optional<double>& v, const char* format) {
    if (!v || !std::isfinite(*v)) return "-";
    char buf[48];
    std::snprintf(buf, sizeof buf, format, *v);
    return buf;
}

}  // namespace

// ---- relora headline ----------------------------------------------------------------

int headlineCommand(const std::vector<std::string>& args) {
    std::set<std::string> valued = kSpecOptions;
    valued.erase("method");
    valued.insert({"db", "steps", "corpus", "warm-start"});
    const Arguments a(args, {}, valued);
    const RunSpec base = experimentBase(a, false);
    const std::vector<double> warmStart = fractionsOf(a, "warm-start", {experiments::kDefaultWarmStartFraction});
    if (warmStart.size() != 1) throw UsageError("--warm-start takes one value");
    std::vector<RunSpec> specs;
    try {
        specs = experiments::headlineRuns(base, warmStart[0]);
    } catch (const std::invalid_argument& e) {
        throw UsageError(std::string("--warm-start: ") + e.what());
    }
    const std::string db = a.valueOr("db", store::defaultDatabasePath());
    const std::vector<int64_t> ids = validateAndQueue(specs, db);
    std::printf("headline: %s preset, %d steps of %d x %d tokens, rank %d on %zu matrix types, "
                "ReLoRA restarts every %d steps, warm start %d steps; runs %s in %s\n",
                base.model.preset.c_str(), base.train.steps, base.train.batch, base.model.context,
                base.method.rank, base.method.targets.size(), base.relora.resetInterval,
                specs[3].relora.warmStartSteps, idList(ids).c_str(), db.c_str());
    std::fflush(stdout);
    const int code = executeAll(specs, ids, db);

    std::printf("\n");
    std::vector<std::string> compareArgs;
    for (int64_t id : ids) compareArgs.push_back(std::to_string(id));
    compareArgs.insert(compareArgs.end(), {"--db", db});
    compareCommand(compareArgs);

    // The verdict, on the paper's terms (DESIGN §6).
    store::RunReader reader(db);
    std::vector<std::optional<double>> loss;
    std::vector<std::optional<double>> thr, eff;
    for (int64_t id : ids) {
        const auto r = reader.run(id);
        loss.push_back(r && r->status == "finished" ? r->valLoss : std::nullopt);
        thr.push_back(meanOverTypes(reader, id, "rank_thr"));
        eff.push_back(meanOverTypes(reader, id, "rank_eff"));
    }
    std::printf("\n");
    if (!loss[0] || !loss[1] || !loss[2] || !loss[3]) {
        std::printf("verdict: incomplete: not every run finished, so there is no ordering to judge\n");
        return code ? code : 1;
    }
    const double r = base.method.rank;
    const double tolerance = 0.005;  // nats: "at or below" allows this much noise
    std::vector<std::string> differences;
    for (int v : {2, 3}) {
        const std::string name = v == 2 ? "ReLoRA" : "ReLoRA+warm start";
        if (*loss[0] > *loss[v] + tolerance)
            differences.push_back(name + " beats full-rank by " + fixed(*loss[0] - *loss[v], "%.4f"));
        if (!(*loss[v] < *loss[1]))
            differences.push_back(name + " is not below LoRA (" + fixed(*loss[v], "%.4f") + " vs " +
                                  fixed(*loss[1], "%.4f") + ")");
        if (!thr[v] || *thr[v] <= r)
            differences.push_back(name + "'s rank σ≥" + fixed(base.train.rankThreshold, "%g") + " of ΔW (" +
                                  fixed(thr[v], "%.1f") + ") is not above r = " + fixed(r, "%g") +
                                  (eff[v] && *eff[v] > r ? " (its effective rank, " + fixed(eff[v], "%.1f") +
                                                               ", is: its singular values are many but small)"
                                                         : std::string()));
    }
    std::printf("verdict: %s: final val loss full-rank %.4f, ReLoRA %.4f, ReLoRA+warm start %.4f, LoRA %.4f; "
                "rank σ≥%g of ΔW (mean per matrix) ReLoRA %s, +warm start %s, LoRA %s, full-rank %s vs r = %g "
                "(effective rank %s, %s, %s, %s)\n",
                differences.empty() ? "matches the ReLoRA paper (full-rank <= ReLoRA < LoRA, rank(ΔW) of ReLoRA > r)"
                                    : "differs from the ReLoRA paper",
                *loss[0], *loss[2], *loss[3], *loss[1], base.train.rankThreshold, fixed(thr[2], "%.1f").c_str(),
                fixed(thr[3], "%.1f").c_str(), fixed(thr[1], "%.1f").c_str(), fixed(thr[0], "%.1f").c_str(), r,
                fixed(eff[2], "%.1f").c_str(), fixed(eff[3], "%.1f").c_str(), fixed(eff[1], "%.1f").c_str(),
                fixed(eff[0], "%.1f").c_str());
    for (const auto& d : differences) std::printf("  differs: %s\n", d.c_str());
    return code;
}

// ---- relora sweep -----------------------------------------------------------------

int sweepCommand(const std::vector<std::string>& args) {
    std::set<std::string> valued = kSpecOptions;
    valued.erase("method");
    valued.insert({"db", "steps", "corpus", "fractions"});
    const Arguments a(args, {}, valued);
    if (a.positionals().size() > 1) throw UsageError("expected at most one spec file");

    const RunSpec base = experimentBase(a, true);
    const std::vector<RunSpec> specs =
        experiments::warmStartSweepRuns(base, fractionsOf(a, "fractions", experiments::kDefaultSweepFractions));
    std::vector<double> fractions;
    for (const RunSpec& s : specs) fractions.push_back(experiments::switchFraction(s));
    const std::string db = a.valueOr("db", store::defaultDatabasePath());
    const std::vector<int64_t> ids = validateAndQueue(specs, db);
    std::printf("sweep: %zu runs of %d steps (%s preset, rank %d, restarts every %d low-rank steps) "
                "switching from full-rank after", specs.size(), base.train.steps, base.model.preset.c_str(),
                base.method.rank, base.relora.resetInterval);
    for (size_t i = 0; i < specs.size(); ++i)
        std::printf("%s %s (step %d)", i ? "," : "", experiments::percentText(fractions[i]).c_str(),
                    specs[i].method.kind == Method::FullRank ? base.train.steps : specs[i].relora.warmStartSteps);
    std::printf("; runs %s in %s\n", idList(ids).c_str(), db.c_str());
    std::fflush(stdout);
    const int code = executeAll(specs, ids, db);

    // The table.
    store::RunReader reader(db);
    struct Point {
        double fraction;
        std::optional<double> loss;
    };
    std::vector<Point> plotted;
    std::printf("\nfinal validation loss against the switch from full-rank to ReLoRA\n");
    // "rank σ≥τ" takes 12 bytes for 8 columns: its field is 4 wider.
    std::printf("%9s %7s %6s %-12s %14s %14s %16s %12s\n", "switch", "step", "run", "status", "final val loss",
                "best val loss", "rank σ≥τ", "rank eff");
    for (size_t i = 0; i < specs.size(); ++i) {
        const auto r = reader.run(ids[i]);
        const bool finished = r && r->status == "finished";
        const std::optional<double> loss = finished ? r->valLoss : std::nullopt;
        const int step = specs[i].method.kind == Method::FullRank ? base.train.steps : specs[i].relora.warmStartSteps;
        std::printf("%9s %7d %6s %-12s %14s %14s %12s %12s\n", experiments::percentText(fractions[i]).c_str(), step,
                    ("#" + std::to_string(ids[i])).c_str(), r ? r->status.c_str() : "-",
                    fixed(loss, "%.4f").c_str(), fixed(finished ? r->bestValLoss : std::nullopt, "%.4f").c_str(),
                    fixed(meanOverTypes(reader, ids[i], "rank_thr"), "%.1f").c_str(),
                    fixed(meanOverTypes(reader, ids[i], "rank_eff"), "%.1f").c_str());
        plotted.push_back({fractions[i], loss});
    }

    // The plot: one '*' per finished run; x from 0 to the largest switch point.
    double lo = INFINITY, hi = -INFINITY, xmax = 0;
    for (const auto& p : plotted) {
        xmax = std::max(xmax, p.fraction);
        if (!p.loss) continue;
        lo = std::min(lo, *p.loss);
        hi = std::max(hi, *p.loss);
    }
    if (!std::isfinite(lo)) {
        std::printf("\nno run finished: nothing to plot\n");
        return code ? code : 1;
    }
    if (hi - lo < 1e-4) {
        lo -= 5e-5;
        hi += 5e-5;
    }
    if (xmax <= 0) xmax = 1;
    constexpr int kRows = 12, kCols = 56;
    std::vector<std::string> grid(kRows, std::string(kCols, ' '));
    const auto column = [&](double f) { return static_cast<int>(std::lround(f / xmax * (kCols - 1))); };
    for (const auto& p : plotted) {
        if (!p.loss) continue;
        const int row = static_cast<int>(std::lround((hi - *p.loss) / (hi - lo) * (kRows - 1)));
        grid[row][column(p.fraction)] = '*';
    }
    std::printf("\nfinal val loss\n");
    for (int row = 0; row < kRows; ++row) {
        const double v = hi - (hi - lo) * row / (kRows - 1);
        const bool labelled = row == 0 || row == kRows - 1 || row == (kRows - 1) / 2;
        std::printf("%10s |%s\n", labelled ? fixed(v, "%.4f").c_str() : "", grid[row].c_str());
    }
    std::printf("%10s +%s\n", "", std::string(kCols, '-').c_str());
    std::string labels(kCols + 8, ' ');
    int freeFrom = 0;
    for (const auto& p : plotted) {
        const std::string text = experiments::percentText(p.fraction);
        const int at = std::max(column(p.fraction) - static_cast<int>(text.size()) / 2, freeFrom);
        if (at + text.size() > labels.size()) continue;
        labels.replace(at, text.size(), text);
        freeFrom = at + static_cast<int>(text.size()) + 1;
    }
    std::printf("%10s  %s\n%10s  %*s\n", "", labels.c_str(), "", kCols / 2 + 14,
                "share of steps trained full-rank first");
    return code;
}

}  // namespace relora::cli
