// RunSpec validation: every rule a spec must meet before it can start a run,
// and the check that its corpus holds text (DESIGN §2, §4-5).
#include "core/RunSpec.h"

#include "core/Corpus.h"
#include "core/RunSpecInternal.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <system_error>

namespace relora {

namespace {

namespace fs = std::filesystem;

// ---- corpus check ----------------------------------------------------------

// Validation answers the loader's question (Corpus::load: is there a text
// file to read?) with the loader's own text test, whyNotText, but only on the
// head of each file, so that it stays cheap and does not read whole files.
constexpr size_t kSniffBytes = 64 * 1024;

enum class FileKind { Text, Empty, NotText, Unreadable };

struct Sniffed {
    FileKind kind;
    const char* reason = nullptr;   // for NotText: why, in whyNotText's words
};

Sniffed sniffFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return {FileKind::Unreadable};
    std::string head(kSniffBytes + 1, '\0');   // the extra byte tells whether the file goes on
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (in.bad()) return {FileKind::Unreadable};
    head.resize(static_cast<size_t>(in.gcount()));
    if (head.empty()) return {FileKind::Empty};
    const bool cut = head.size() > kSniffBytes;
    if (cut) head.resize(kSniffBytes);
    if (const char* why = whyNotText(head, /*headOfLongerFile=*/cut)) return {FileKind::NotText, why};
    return {FileKind::Text};
}

// Whether `dir` or a folder below it holds a text file. Searches as
// Corpus::load collects: real subfolders are searched, links to folders are
// not followed, and a subfolder that cannot be listed is passed over.
bool holdsTextFile(const fs::path& dir, std::error_code& ec) {
    fs::directory_iterator it(dir, ec);
    for (const fs::directory_iterator end; !ec && it != end; it.increment(ec)) {
        const fs::directory_entry& entry = *it;
        std::error_code e;
        if (entry.is_symlink(e) && fs::is_directory(entry.path(), e)) continue;
        if (entry.is_directory(e)) {
            if (std::error_code sub; holdsTextFile(entry.path(), sub)) return true;
        } else if (entry.is_regular_file(e) && sniffFile(entry.path()).kind == FileKind::Text) {
            return true;
        }
    }
    return false;
}

std::optional<std::string> folderProblem(const std::string& path) {
    std::error_code ec;
    if (holdsTextFile(path, ec)) return std::nullopt;
    if (ec) return "folder '" + path + "' cannot be read: " + ec.message();
    return "folder '" + path + "' holds no text file, nor do its subfolders "
           "(binary, empty and unreadable files do not count)";
}

std::optional<std::string> corpusProblem(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (st.type() == fs::file_type::not_found) return "'" + path + "' does not exist";
    if (ec) return "'" + path + "' cannot be reached: " + ec.message();
    if (fs::is_directory(st)) return folderProblem(path);
    if (!fs::is_regular_file(st)) return "'" + path + "' is neither a file nor a folder";
    const Sniffed file = sniffFile(path);
    if (file.kind == FileKind::Unreadable) return "'" + path + "' cannot be read (check its permissions)";
    if (file.kind == FileKind::Empty) return "'" + path + "' is an empty file";
    if (file.kind == FileKind::NotText) return "'" + path + "' is not a text file: " + file.reason;
    return std::nullopt;
}

// ---- validation ------------------------------------------------------------

using Errors = std::vector<SpecError>;

std::string str(int v) { return std::to_string(v); }
std::string str(double v) { return detail::shortest(v); }
std::string str(float v) { return detail::shortest(v); }

void atLeastOne(Errors& e, const char* field, int v, const std::string& why = "") {
    if (v < 1) e.push_back({field, "must be at least 1" + why + ", got " + str(v)});
}

void notNegative(Errors& e, const char* field, int v, const std::string& zeroMeans) {
    if (v < 0) e.push_back({field, "must be 0 (" + zeroMeans + ") or positive, got " + str(v)});
}

void positiveNumber(Errors& e, const char* field, double v) {
    if (!(v > 0 && std::isfinite(v))) e.push_back({field, "must be a positive number, got " + str(v)});
}

// Written so that NaN fails too.
bool inHalfOpenUnit(double v) { return v >= 0 && v < 1; }

std::pair<int, int> matrixShape(const ModelSpec& m, TargetMatrix t) {   // (out, in)
    switch (t) {
    case TargetMatrix::Gate:
    case TargetMatrix::Up: return {m.dFF, m.dModel};
    case TargetMatrix::Down: return {m.dModel, m.dFF};
    default: return {m.dModel, m.dModel};
    }
}

void checkTop(const RunSpec& s, Errors& e) {
    if (s.schemaVersion != kRunSpecSchemaVersion)
        e.push_back({"schema_version", "must be " + str(kRunSpecSchemaVersion) + " (fromJson migrates older specs), got " +
                                           str(s.schemaVersion)});
    if (s.name.empty()) e.push_back({"name", "is empty; give the run a name"});
    if (s.backend != "auto" && s.backend != "cpu" && s.backend != "cuda")
        e.push_back({"backend", "must be auto, cpu or cuda, got '" + s.backend + "'"});
    if (s.precision != "bf16" && s.precision != "fp32")
        e.push_back({"precision", "must be bf16 or fp32, got '" + s.precision + "'"});
}

void checkModel(const ModelSpec& m, Errors& e) {
    if (!detail::isKnownPreset(m.preset))
        e.push_back({"model.preset", "must be tiny, 60m, 130m or custom, got '" + m.preset + "'"});
    atLeastOne(e, "model.d_model", m.dModel);
    atLeastOne(e, "model.d_ff", m.dFF);
    atLeastOne(e, "model.heads", m.heads);
    atLeastOne(e, "model.layers", m.layers);
    atLeastOne(e, "model.context", m.context);
    if (m.heads > 0 && m.dModel > 0) {
        if (m.dModel % m.heads != 0)
            e.push_back({"model.heads", "must divide d_model = " + str(m.dModel) + ", got " + str(m.heads)});
        else if ((m.dModel / m.heads) % 2 != 0)
            e.push_back({"model.heads", "gives an odd head size d_model / heads = " + str(m.dModel / m.heads) +
                                            "; rotary embeddings rotate pairs, so it must be even"});
    }
    if (m.vocab < 256)
        e.push_back({"model.vocab", "must be at least 256 (the byte-level tokenizer's symbols), got " + str(m.vocab)});
    positiveNumber(e, "model.rope_theta", m.ropeTheta);
    positiveNumber(e, "model.norm_eps", m.normEps);
    positiveNumber(e, "model.init_std", m.initStd);
}

void checkData(const DataSpec& d, bool checkCorpus, Errors& e) {
    if (!(d.validationFraction > 0 && d.validationFraction <= 0.5))
        e.push_back({"data.validation_fraction", "must be in (0, 0.5], got " + str(d.validationFraction)});
    if (d.synthetic) return;
    if (d.corpus.empty())
        e.push_back({"data.corpus", "is empty; give a text file or folder, or set data.synthetic"});
    else if (checkCorpus)
        if (const auto problem = corpusProblem(d.corpus)) e.push_back({"data.corpus", *problem});
}

void checkLowRank(const RunSpec& s, Errors& e) {
    const MethodSpec& m = s.method;
    if (m.targets.empty())
        e.push_back({"method.targets", "is empty; choose some of wq, wk, wv, wo, gate, up, down (or method full)"});
    std::set<TargetMatrix> seen;
    for (TargetMatrix t : m.targets) {
        if (seen.insert(t).second) continue;
        e.push_back({"method.targets", "lists " + toString(t) + " twice; name each matrix once"});
        break;
    }

    // A rank above the smaller side of a matrix adds parameters without adding rank.
    std::optional<TargetMatrix> smallest;
    int bound = 0;
    if (s.model.dModel > 0 && s.model.dFF > 0) {
        for (TargetMatrix t : m.targets) {
            const auto [out, in] = matrixShape(s.model, t);
            if (smallest && std::min(out, in) >= bound) continue;
            smallest = t;
            bound = std::min(out, in);
        }
    }
    if (smallest && (m.rank < 1 || m.rank > bound)) {
        const auto [out, in] = matrixShape(s.model, *smallest);
        e.push_back({"method.rank", "must be between 1 and " + str(bound) + " (the smallest targeted matrix, " +
                                        toString(*smallest) + ", is " + str(out) + "x" + str(in) + "), got " +
                                        str(m.rank)});
    } else {
        atLeastOne(e, "method.rank", m.rank);
    }
    positiveNumber(e, "method.alpha", m.alpha);
    if (!inHalfOpenUnit(m.dropout)) e.push_back({"method.dropout", "must be in [0, 1), got " + str(m.dropout)});
}

// Explicit restart steps: strictly increasing, after the warm start, before the end.
bool checkRestartList(const RunSpec& s, Errors& e) {
    const auto& list = s.relora.restartSteps;
    for (size_t i = 0; i < list.size(); ++i) {
        if (i > 0 && list[i] <= list[i - 1]) {
            e.push_back({"relora.restart_steps", "must be strictly increasing, but " + str(list[i]) + " follows " +
                                                     str(list[i - 1])});
            return false;
        }
        if (list[i] <= s.relora.warmStartSteps || list[i] >= s.train.steps) {
            e.push_back({"relora.restart_steps", "must lie after warm_start_steps = " + str(s.relora.warmStartSteps) +
                                                     " and before steps = " + str(s.train.steps) + ", got " +
                                                     str(list[i])});
            return false;
        }
    }
    return true;
}

void checkReLoRA(const RunSpec& s, Errors& e) {
    const ReLoRASpec& r = s.relora;
    const int steps = s.train.steps;
    const bool warmStartOk = r.warmStartSteps >= 0 && (steps < 1 || r.warmStartSteps < steps);
    if (!warmStartOk)
        e.push_back({"relora.warm_start_steps", "must be at least 0 and less than steps = " + str(steps) +
                                                    " (the full-rank start has to end before the run), got " +
                                                    str(r.warmStartSteps)});

    bool scheduleOk = false;
    if (!r.restartSteps.empty()) {
        scheduleOk = checkRestartList(s, e);
    } else if (r.resetInterval < 1) {
        e.push_back({"relora.reset_interval", "must be at least 1 (or give relora.restart_steps), got " +
                                                  str(r.resetInterval)});
    } else if (steps >= 1 && warmStartOk) {
        const int lowRankSteps = steps - r.warmStartSteps;
        scheduleOk = r.resetInterval < lowRankSteps;
        if (!scheduleOk)
            e.push_back({"relora.reset_interval", "must be less than the " + str(lowRankSteps) +
                                                      " low-rank steps, or the run never restarts (that is LoRA), got " +
                                                      str(r.resetInterval)});
    }

    if (r.restartWarmup < 0) {
        e.push_back({"relora.restart_warmup", "must be at least 0, got " + str(r.restartWarmup)});
    } else if (scheduleOk) {
        // The LR has to be back on the cosine before the next merge.
        const std::vector<int> restarts = s.restartSchedule();
        for (size_t i = 1; i < restarts.size(); ++i) {
            const int gap = restarts[i] - restarts[i - 1];
            if (r.restartWarmup < gap) continue;
            e.push_back({"relora.restart_warmup", "must be less than the gap between restarts (" + str(gap) +
                                                      " steps after step " + str(restarts[i - 1]) + "), got " +
                                                      str(r.restartWarmup)});
            break;
        }
    }

    if (r.prune != PruneMode::Reset && !(r.pruneRatio >= 0 && r.pruneRatio <= 1))
        e.push_back({"relora.prune_ratio", "must be in [0, 1] (the fraction of optimizer state zeroed), got " +
                                               str(r.pruneRatio)});
}

void checkOptim(const OptimSpec& o, int steps, Errors& e) {
    positiveNumber(e, "optim.lr", o.lr);
    if (!(o.minLrRatio >= 0 && o.minLrRatio <= 1))
        e.push_back({"optim.min_lr_ratio", "must be in [0, 1], got " + str(o.minLrRatio)});
    if (o.warmup < 0 || (steps >= 1 && o.warmup >= steps))
        e.push_back({"optim.warmup", "must be at least 0 and less than steps = " + str(steps) + ", got " +
                                         str(o.warmup)});
    if (!(o.weightDecay >= 0 && std::isfinite(o.weightDecay)))
        e.push_back({"optim.weight_decay", "must be 0 or positive, got " + str(o.weightDecay)});
    if (!inHalfOpenUnit(o.beta1)) e.push_back({"optim.beta1", "must be in [0, 1), got " + str(o.beta1)});
    if (!inHalfOpenUnit(o.beta2)) e.push_back({"optim.beta2", "must be in [0, 1), got " + str(o.beta2)});
    positiveNumber(e, "optim.eps", o.eps);
    if (!std::isfinite(o.clip))
        e.push_back({"optim.clip", "must be a finite number (0 or less disables clipping), got " + str(o.clip)});
}

void checkTrain(const TrainSpec& t, Errors& e) {
    atLeastOne(e, "train.batch", t.batch);
    atLeastOne(e, "train.steps", t.steps, " (zero steps train nothing)");
    atLeastOne(e, "train.eval_interval", t.evalInterval);
    atLeastOne(e, "train.eval_batches", t.evalBatches);
    atLeastOne(e, "train.log_interval", t.logInterval);
    if (!(t.rankThreshold >= 0 && std::isfinite(t.rankThreshold)))
        e.push_back({"train.rank_threshold", "must be 0 or positive, got " + str(t.rankThreshold)});
    notNegative(e, "train.snapshot_interval", t.snapshotInterval, "only at the end");
    notNegative(e, "train.checkpoint_interval", t.checkpointInterval, "only on stop and at the end");
    notNegative(e, "train.threads", t.threads, "OMP_NUM_THREADS, else all cores");
}


}  // namespace

std::vector<SpecError> validate(const RunSpec& spec, bool checkCorpus) {
    Errors errors;
    checkTop(spec, errors);
    checkModel(spec.model, errors);
    checkData(spec.data, checkCorpus, errors);
    if (spec.isLowRank()) checkLowRank(spec, errors);
    if (spec.method.kind == Method::ReLoRA) checkReLoRA(spec, errors);
    checkOptim(spec.optim, spec.train.steps, errors);
    checkTrain(spec.train, errors);
    return errors;
}

}  // namespace relora
