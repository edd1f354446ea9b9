// The run database from the command line: list, show, metrics, compare,
// delete and export.
#include "app/cli/Commands.h"
#include "core/Checkpoint.h"
#include "core/Trainer.h"
#include "core/snapshot/Snapshot.h"
#include "core/store/RunFiles.h"
#include "core/store/RunStore.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <functional>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <unistd.h>

namespace relora::cli {
namespace {

std::string dbOption(const Arguments& a) { return a.valueOr("db", store::defaultDatabasePath()); }

store::RunSummary requireRun(store::RunReader& reader, int64_t id) {
    auto run = reader.run(id);
    if (!run) throw std::runtime_error("no run #" + std::to_string(id) + " in " + reader.path());
    return *run;
}

std::string number(const std::optional<double>& v, const char* format = "%.4f") {
    if (!v || !std::isfinite(*v)) return "-";
    char buf[32];
    std::snprintf(buf, sizeof buf, format, *v);
    return buf;
}

std::string latestText(store::RunReader& reader, int64_t id, const std::string& key, const char* format) {
    const auto p = reader.latest(id, key);
    return number(p ? std::optional<double>(p->value) : std::nullopt, format);
}

std::vector<std::string> splitList(const std::string& text) {
    std::vector<std::string> out;
    std::stringstream s(text);
    for (std::string item; std::getline(s, item, ',');)
        if (!item.empty()) out.push_back(item);
    return out;
}

}  // namespace

int64_t runIdArgument(const std::string& text) {
    const std::string digits = !text.empty() && text[0] == '#' ? text.substr(1) : text;
    int64_t id = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
    if (digits.empty() || ec != std::errc() || end != digits.data() + digits.size() || id <= 0)
        throw UsageError("'" + text + "' is not a run id (a positive number, as `relora list` shows)");
    return id;
}

int listCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {}, {"db"});
    if (!a.positionals().empty()) throw UsageError("usage: relora list [--db FILE]");
    store::RunReader reader(dbOption(a));
    const auto runs = reader.listRuns();
    if (runs.empty()) {
        std::printf("no runs in %s\n", reader.path().c_str());
        return 0;
    }
    std::printf("%5s  %-24s %-7s %-12s %8s %10s %10s %10s  %s\n", "id", "name", "method", "status",
                "step", "train", "val", "best val", "device");
    for (const auto& r : runs)
        std::printf("%5lld  %-24.24s %-7s %-12s %8s %10s %10s %10s  %s\n", (long long)r.id,
                    r.name.c_str(), r.method.c_str(), r.status.c_str(),
                    r.lastStep ? std::to_string(*r.lastStep).c_str() : "-", number(r.trainLoss).c_str(),
                    number(r.valLoss).c_str(), number(r.bestValLoss).c_str(), r.device.c_str());
    return 0;
}

int showCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {"spec"}, {"db"});
    if (a.positionals().size() != 1) throw UsageError("usage: relora show RUN [--db FILE] [--spec]");
    const int64_t id = runIdArgument(a.positionals().front());
    store::RunReader reader(dbOption(a));
    const auto r = requireRun(reader, id);
    if (a.flag("spec")) {
        std::cout << reader.spec(id).value_or("{}") << "\n";
        return 0;
    }
    std::printf("run #%lld '%s'\n  method   %s\n  status   %s%s%s\n  backend  %s %s\n", (long long)r.id,
                r.name.c_str(), r.method.c_str(), r.status.c_str(), r.message.empty() ? "" : ": ",
                r.message.c_str(), r.backend.c_str(), r.device.c_str());
    std::printf("  step     %s\n  loss     train %s, validation %s (best %s)\n",
                r.lastStep ? std::to_string(*r.lastStep).c_str() : "-", number(r.trainLoss).c_str(),
                number(r.valLoss).c_str(), number(r.bestValLoss).c_str());
    for (const char* key : {"params_total", "params_trainable", "optimizer_state", "update_size"})
        if (auto p = reader.latest(id, key)) std::printf("  %-17s %.0f\n", key, p->value);
    for (const char* kind : {"wq", "wk", "wv", "wo", "gate", "up", "down"}) {
        const auto eff = reader.latest(id, std::string("rank_eff/") + kind);
        if (!eff) continue;
        std::printf("  rank(ΔW) %-5s effective %.1f, stable %s, σ≥τ %s\n", kind, eff->value,
                    latestText(reader, id, std::string("rank_stable/") + kind, "%.2f").c_str(),
                    latestText(reader, id, std::string("rank_thr/") + kind, "%.0f").c_str());
    }
    const auto events = reader.events(id);
    if (!events.empty()) std::printf("  events\n");
    for (const auto& e : events)
        std::printf("    step %-7lld %-18s %s\n", (long long)e.step, e.kind.c_str(), e.detail.c_str());
    for (const auto& f : reader.snapshots(id)) std::printf("  snapshot   step %lld  %s\n", (long long)f.step, f.path.c_str());
    // Older checkpoint files are removed as newer ones are committed.
    if (const auto c = reader.checkpoints(id); !c.empty())
        std::printf("  checkpoint step %lld  %s\n", (long long)c.back().step, c.back().path.c_str());
    return 0;
}

int metricsCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {"csv"}, {"db", "keys"});
    if (a.positionals().size() != 1) throw UsageError("usage: relora metrics RUN [--keys k1,k2] [--csv] [--db FILE]");
    const int64_t id = runIdArgument(a.positionals().front());
    store::RunReader reader(dbOption(a));
    requireRun(reader, id);
    const auto keys = splitList(a.valueOr("keys", ""));
    const auto known = reader.metricKeys(id);
    for (const auto& k : keys)
        if (std::find(known.begin(), known.end(), k) == known.end())
            throw std::runtime_error("run #" + std::to_string(id) + " has no metric '" + k + "'");
    if (!a.flag("csv") && keys.empty()) {  // without --csv: which keys there are
        for (const auto& k : known) std::printf("%s\n", k.c_str());
        return 0;
    }
    reader.writeMetricsCsv(std::cout, id, keys);
    return 0;
}

int compareCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {}, {"db"});
    if (a.positionals().size() < 2) throw UsageError("usage: relora compare RUN RUN ... [--db FILE]");
    std::vector<int64_t> ids;
    for (const auto& p : a.positionals()) ids.push_back(runIdArgument(p));
    store::RunReader reader(dbOption(a));
    struct Row {
        std::string label;
        std::function<std::string(int64_t, const store::RunSummary&)> value;
    };
    const auto latest = [&](int64_t id, const std::string& key, const char* format) {
        return latestText(reader, id, key, format);
    };
    const auto medianOf = [&](int64_t id, const std::string& key) {
        auto series = reader.series(id, key);
        if (series.empty()) return std::string("-");
        std::vector<double> v;
        for (const auto& s : series) v.push_back(s.value);
        std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
        return number(v[v.size() / 2], "%.0f");
    };
    std::vector<Row> rows = {
        {"name", [](int64_t, const store::RunSummary& r) { return r.name; }},
        {"method", [](int64_t, const store::RunSummary& r) { return r.method; }},
        {"status", [](int64_t, const store::RunSummary& r) { return r.status; }},
        {"steps", [](int64_t, const store::RunSummary& r) { return r.lastStep ? std::to_string(*r.lastStep) : "-"; }},
        {"final val loss", [](int64_t, const store::RunSummary& r) { return number(r.valLoss); }},
        {"best val loss", [](int64_t, const store::RunSummary& r) { return number(r.bestValLoss); }},
        {"params total", [&](int64_t id, const auto&) { return latest(id, "params_total", "%.0f"); }},
        {"params trainable", [&](int64_t id, const auto&) { return latest(id, "params_trainable", "%.0f"); }},
        {"optimizer state", [&](int64_t id, const auto&) { return latest(id, "optimizer_state", "%.0f"); }},
        {"update size", [&](int64_t id, const auto&) { return latest(id, "update_size", "%.0f"); }},
    };
    for (const char* kind : {"wq", "wk", "wv", "wo", "gate", "up", "down"}) {
        rows.push_back({std::string("rank_eff ") + kind, [&, kind](int64_t id, const auto&) {
                            return latest(id, std::string("rank_eff/") + kind, "%.1f"); }});
        rows.push_back({std::string("rank_thr ") + kind, [&, kind](int64_t id, const auto&) {
                            return latest(id, std::string("rank_thr/") + kind, "%.1f"); }});
    }
    rows.push_back({"tokens/s (median)", [&](int64_t id, const auto&) { return medianOf(id, "tokens_per_s"); }});

    std::vector<store::RunSummary> runs;
    for (int64_t id : ids) runs.push_back(requireRun(reader, id));
    std::printf("%-18s", "");
    for (const auto& r : runs) std::printf(" %16s", ("#" + std::to_string(r.id)).c_str());
    std::printf("\n");
    for (const auto& row : rows) {
        std::vector<std::string> cells;
        bool any = false;
        for (size_t i = 0; i < runs.size(); ++i) {
            cells.push_back(row.value(ids[i], runs[i]));
            any = any || cells.back() != "-";
        }
        if (!any) continue;  // e.g. ranks of matrices no run tracks
        std::printf("%-18s", row.label.c_str());
        for (const auto& c : cells) std::printf(" %16.16s", c.c_str());
        std::printf("\n");
    }
    return 0;
}

int deleteCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {"yes"}, {"db"});
    if (a.positionals().size() != 1) throw UsageError("usage: relora delete RUN [--yes] [--db FILE]");
    const std::string db = dbOption(a);
    const int64_t id = runIdArgument(a.positionals().front());
    store::RunReader reader(db);
    const auto r = requireRun(reader, id);
    if (!a.flag("yes")) {
        if (!isatty(fileno(stdin)))
            throw UsageError("not a terminal: pass --yes to delete run #" + std::to_string(id) + " without asking");
        std::fprintf(stderr, "delete run #%lld '%s' (%s), its metrics, checkpoints and snapshots? [y/N] ",
                     (long long)id, r.name.c_str(), r.status.c_str());
        std::string answer;
        std::getline(std::cin, answer);
        if (answer != "y" && answer != "Y" && answer != "yes") {
            std::fprintf(stderr, "nothing deleted\n");
            return 1;
        }
    }
    const store::DeletedRun deleted = store::RunStore(db).deleteRun(id);
    size_t files = 0;
    for (const auto* list : {&deleted.snapshotPaths, &deleted.checkpointPaths})
        for (const auto& path : *list) files += std::filesystem::remove(path) ? 1 : 0;
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(db + ".files") / ("run-" + std::to_string(id)), ec);
    std::printf("deleted run #%lld and %zu files\n", (long long)id, files);
    return 0;
}

int exportCommand(const std::vector<std::string>& rawArgs) {
    std::vector<std::string> args = rawArgs;
    std::replace(args.begin(), args.end(), std::string("-o"), std::string("--output"));
    const Arguments a(args, {}, {"db", "step", "output"});
    const auto output = a.value("output");
    if (a.positionals().size() != 1 || !output)
        throw UsageError("usage: relora export RUN [--step N] -o FILE.h5 [--db FILE]");
    const std::string db = dbOption(a);
    const int64_t id = runIdArgument(a.positionals().front());
    store::RunReader reader(db);
    requireRun(reader, id);
    const std::optional<int64_t> step = a.value("step") ? std::optional<int64_t>(a.intValue("step", 0)) : std::nullopt;
    // A recorded snapshot of that step (or the newest) is copied as it is.
    const auto snapshots = reader.snapshots(id);
    for (auto it = snapshots.rbegin(); it != snapshots.rend(); ++it) {
        if (step && it->step != *step) continue;
        if (!std::filesystem::exists(it->path)) continue;
        std::filesystem::copy_file(it->path, *output, std::filesystem::copy_options::overwrite_existing);
        std::printf("exported run #%lld step %lld to %s\n", (long long)id, (long long)it->step, output->c_str());
        return 0;
    }
    // Otherwise the weights come from the checkpoint, if it holds that step.
    const auto checkpoints = reader.checkpoints(id);
    if (checkpoints.empty() || (step && checkpoints.back().step != *step)) {
        std::set<int64_t> steps;
        for (const auto& s : snapshots) steps.insert(s.step);
        if (!checkpoints.empty()) steps.insert(checkpoints.back().step);
        std::string have;
        for (int64_t s : steps) have += " " + std::to_string(s);
        throw std::runtime_error("run #" + std::to_string(id) + " has no weights" +
                                 (step ? " at step " + std::to_string(*step) : std::string()) +
                                 (have.empty() ? "" : "; steps available:" + have));
    }
    const CheckpointData data = readCheckpoint(checkpoints.back().path);
    RunSpec spec = fromJson(data.specJson);
    auto backend = createBackend("cpu");
    Trainer trainer(spec, *backend);
    trainer.restore(data);
    writeSnapshot(*output, trainer.model(), id, data.step, toString(spec.method.kind), data.specJson);
    std::printf("exported run #%lld step %d to %s\n", (long long)id, data.step, output->c_str());
    return 0;
}

}  // namespace relora::cli
