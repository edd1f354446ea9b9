// `relora run` and `relora resume`: train one run headless into the run
// database, with a progress display, checkpoints, snapshots, an optional
// JSON-lines file, and a clean stop on Ctrl-C.
#include "app/cli/Commands.h"
#include "app/cli/ConsoleSink.h"
#include "core/Trainer.h"
#include "core/snapshot/Snapshot.h"
#include "core/store/RunFiles.h"
#include "core/store/RunStore.h"

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <unistd.h>

namespace relora::cli {
namespace {

TrainerControl* g_control = nullptr;

void onInterrupt(int) {
    if (g_control) g_control->stop = true;
    std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the program at once
}

std::string formatDuration(double seconds) {
    const long s = static_cast<long>(seconds + 0.5);
    char buf[32];
    if (s >= 3600) std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
    else std::snprintf(buf, sizeof buf, "%ld:%02ld", s / 60, s % 60);
    return buf;
}

// A bar redrawn in place on a terminal; a plain line every 2 % otherwise.
class ProgressDisplay {
public:
    ProgressDisplay(int total, size_t tokensPerStep)
        : total_(total), tokens_(tokensPerStep), tty_(isatty(fileno(stderr))) {}

    void update(const StepResult& r) {
        const double alpha = ++seen_ <= 3 ? 1.0 : 0.1;  // smoothed step time for rate and ETA
        seconds_ = alpha * r.seconds + (1 - alpha) * seconds_;
        const double eta = seconds_ * (total_ - r.step);
        const double rate = tokens_ / seconds_;
        if (tty_) {
            const int width = 24, filled = width * r.step / total_;
            std::fprintf(stderr, "\r\033[K[%s%s] %d/%d loss %.4f lr %.2e %.0f tok/s ETA %s",
                         std::string(filled, '#').c_str(), std::string(width - filled, '.').c_str(),
                         r.step, total_, r.loss, r.lr, rate, formatDuration(eta).c_str());
        } else if (r.step % std::max(1, total_ / 50) == 0 || r.step == total_) {
            std::fprintf(stderr, "step %d/%d loss %.4f lr %.2e |g| %.3f %.0f tok/s ETA %s\n", r.step,
                         total_, r.loss, r.lr, r.gradNorm, rate, formatDuration(eta).c_str());
        }
        std::fflush(stderr);
    }

private:
    int total_;
    double tokens_;
    bool tty_;
    int seen_ = 0;
    double seconds_ = 0;
};

}  // namespace

int executeRun(const RunSpec& spec, const std::string& dbPath, int64_t runId,
               const CheckpointData* resumeFrom, const std::string& resumedFrom,
               const std::optional<std::string>& jsonlPath) {
    store::StoreWriter writer(dbPath, runId);
    ConsoleSink console(stderr);
    FanOutSink sinks;
    sinks.add(&writer);
    sinks.add(&console);
    std::unique_ptr<JsonLinesSink> jsonl;
    if (jsonlPath) {
        jsonl = std::make_unique<JsonLinesSink>(*jsonlPath);
        sinks.add(jsonl.get());
    }
    std::fprintf(stderr, "run #%lld '%s': %s, preset %s, %d steps of %d x %d tokens, database %s\n",
                 (long long)runId, spec.name.c_str(), toString(spec.method.kind).c_str(),
                 spec.model.preset.c_str(), spec.train.steps, spec.train.batch, spec.model.context,
                 dbPath.c_str());
    // A run that cannot even start (no device, out of memory, a checkpoint
    // that does not fit) is recorded as failed with the reason, not left queued.
    std::unique_ptr<Backend> backend;
    std::unique_ptr<Trainer> built;
    try {
        backend = createBackendFor(spec);
        built = std::make_unique<Trainer>(spec, *backend, &sinks);
        if (resumeFrom) built->restore(*resumeFrom);
    } catch (const std::exception& e) {
        writer.runFinished("failed", e.what());
        throw;
    }
    Trainer& trainer = *built;
    if (resumeFrom) std::fprintf(stderr, "resuming at step %d\n", trainer.currentStep());
    const auto& report = trainer.corpus().report();
    if (!spec.data.synthetic)
        std::fprintf(stderr, "corpus: %zu files, %zu skipped, %zu train / %zu validation tokens\n",
                     report.filesRead.size(), report.skipped.size(), report.trainTokens,
                     report.validationTokens);

    const std::string files = store::runFilesDirectory(dbPath, runId);
    // A new checkpoint file replaces the previous one only once its record is
    // committed, so the database's newest checkpoint row always names a file
    // that exists and holds exactly that step, whenever the process dies.
    std::string previousCheckpoint = resumedFrom;
    trainer.saveCheckpoint = [&](Trainer& t) {
        char name[64];
        std::snprintf(name, sizeof name, "/checkpoint-%07d.ckpt", t.currentStep());
        const std::string path = files + name;
        writeCheckpoint(path, t.checkpoint());
        writer.recordCheckpoint(t.currentStep(), path);
        if (!writer.flush()) return;
        if (!previousCheckpoint.empty() && previousCheckpoint != path) std::filesystem::remove(previousCheckpoint);
        previousCheckpoint = path;
    };
    const auto snapshot = [&](int step) {
        const std::string path = files + "/" + snapshotFileName(runId, step);
        writeSnapshot(path, trainer.model(), runId, step, toString(spec.method.kind), toJson(spec));
        writer.recordSnapshot(step, path);
    };

    TrainerControl control;
    g_control = &control;
    std::signal(SIGINT, onInterrupt);
    ProgressDisplay progress(spec.train.steps, trainer.tokensPerStep());
    const int every = spec.train.snapshotInterval;
    const RunOutcome outcome = trainer.run(control, [&](const StepResult& r) {
        progress.update(r);
        if (every > 0 && r.step % every == 0 && r.step != spec.train.steps) snapshot(r.step);
    });
    std::signal(SIGINT, SIG_DFL);
    g_control = nullptr;
    if (outcome.status == "finished") snapshot(trainer.currentStep());
    if (!writer.flush() || writer.error())
        std::fprintf(stderr, "warning: the run database reported: %s\n",
                     writer.error().value_or("rows still pending").c_str());
    if (outcome.finalValidationLoss)
        std::printf("run #%lld %s: %s after %d steps, final val_loss %.4f, best %.4f\n",
                    (long long)runId, spec.name.c_str(), outcome.status.c_str(), outcome.steps,
                    *outcome.finalValidationLoss, *outcome.bestValidationLoss);
    if (outcome.status == "stopped")
        std::fprintf(stderr, "continue it with: relora resume %lld --db %s\n", (long long)runId, dbPath.c_str());
    return outcome.status == "failed" ? 1 : outcome.status == "stopped" ? 130 : 0;
}

int64_t queueRun(const RunSpec& spec, const std::string& dbPath) {
    if (const auto errors = validate(spec); !errors.empty())
        throw InvalidSpec(errors);
    const auto folder = std::filesystem::path(dbPath).parent_path();
    if (!folder.empty()) std::filesystem::create_directories(folder);
    return store::RunStore(dbPath).createRun(toJson(spec), spec.name, toString(spec.method.kind));
}

int runCommand(const std::vector<std::string>& args) {
    std::set<std::string> valued = kSpecOptions;
    valued.insert({"metrics", "db"});
    const Arguments a(args, {}, valued);
    const RunSpec spec = loadSpec(a);
    const std::string db = a.valueOr("db", store::defaultDatabasePath());
    return executeRun(spec, db, queueRun(spec, db), nullptr, "", a.value("metrics"));
}

int resumeCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {}, {"db", "metrics"});
    if (a.positionals().size() != 1) throw UsageError("usage: relora resume RUN [--db FILE]");
    const int64_t id = runIdArgument(a.positionals().front());
    const std::string db = a.valueOr("db", store::defaultDatabasePath());
    store::RunReader reader(db);
    const auto summary = reader.run(id);
    if (!summary) throw std::runtime_error("no run #" + std::to_string(id) + " in " + db);
    if (summary->status == "finished")
        throw std::runtime_error("run #" + std::to_string(id) + " already finished");
    const auto checkpoints = reader.checkpoints(id);
    if (checkpoints.empty() || !std::filesystem::exists(checkpoints.back().path))
        throw std::runtime_error("run #" + std::to_string(id) + " has no checkpoint to resume from");
    const CheckpointData data = readCheckpoint(checkpoints.back().path);
    const RunSpec spec = fromJson(data.specJson);
    return executeRun(spec, db, id, &data, checkpoints.back().path, a.value("metrics"));
}

}  // namespace relora::cli
