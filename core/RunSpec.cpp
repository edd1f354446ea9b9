// RunSpec: enum names, presets, the JSON form and validation (DESIGN §2, §4-5).
#include "core/RunSpec.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <climits>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string_view>

namespace relora {

namespace {

// Ordered, so a written spec lists its fields in the order a person reads them.
using Json = nlohmann::ordered_json;
namespace fs = std::filesystem;

constexpr std::array<const char*, 3> kMethodNames{"full", "lora", "relora"};
constexpr std::array<const char*, 3> kPruneNames{"reset", "random", "magnitude"};
constexpr std::array<const char*, kTargetCount> kTargetNames{"wq", "wk", "wv", "wo",
                                                             "gate", "up", "down"};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// Shortest text that reads back as the same value; locale-independent, unlike
// printf, because the GUI runs under the user's locale.
template <class Float>
std::string shortest(Float f) {
    std::array<char, 64> buf{};
    const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), f).ptr;
    return std::string(buf.data(), end);
}

// A float stored as the double nearest its shortest decimal, so spec files
// say 0.001 rather than 0.0010000000474974513 and still read back exactly.
double jsonNumber(float f) {
    if (!std::isfinite(f)) return f;
    const std::string text = shortest(f);
    double d = 0;
    std::from_chars(text.data(), text.data() + text.size(), d);
    return d;
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

bool isKnownPreset(const std::string& name) { return name == "custom" || findPreset(name); }

void applyPreset(RunSpec& spec, const Preset& p) {
    spec.model.preset = p.name;
    spec.model.dModel = p.dModel;
    spec.model.dFF = p.dFF;
    spec.model.heads = p.heads;
    spec.model.layers = p.layers;
    spec.model.context = p.context;
    spec.method.rank = p.rank;
}

// ---- reading JSON ----------------------------------------------------------

std::string join(const std::string& path, const std::string& key) {
    return path.empty() ? key : path + "." + key;
}

[[noreturn]] void wrongType(const std::string& field, const std::string& expected, const Json& v) {
    throw SpecParseError(field, "expected " + expected + ", got " + v.type_name());
}

// nlohmann prefixes its messages with an exception id that means nothing to
// a user; the rest names the line and column.
std::string withoutExceptionId(const std::string& what) {
    const auto end = what.find("] ");
    return end == std::string::npos ? what : what.substr(end + 2);
}

Json parseText(const std::string& text) {
    try {
        return Json::parse(text);
    } catch (const Json::parse_error& e) {
        throw SpecParseError("", "invalid JSON: " + withoutExceptionId(e.what()));
    }
}

void convert(const Json& v, const std::string& field, bool& out) {
    if (!v.is_boolean()) wrongType(field, "true or false", v);
    out = v.get<bool>();
}

void convert(const Json& v, const std::string& field, std::string& out) {
    if (!v.is_string()) wrongType(field, "a string", v);
    out = v.get<std::string>();
}

void convert(const Json& v, const std::string& field, double& out) {
    if (!v.is_number()) wrongType(field, "a number", v);
    out = v.get<double>();
}

void convert(const Json& v, const std::string& field, float& out) {
    double d = 0;
    convert(v, field, d);
    out = static_cast<float>(d);
}

// JSON has one number type, so an integer field takes any number without a
// fraction ("2e3" included).
double wholeNumber(const Json& v, const std::string& field) {
    if (!v.is_number()) wrongType(field, "an integer", v);
    const double d = v.get<double>();
    if (d != std::floor(d)) throw SpecParseError(field, "expected an integer, got " + v.dump());
    return d;
}

void convert(const Json& v, const std::string& field, int& out) {
    const double d = wholeNumber(v, field);
    if (d < INT_MIN || d > INT_MAX)
        throw SpecParseError(field, "is out of range for a 32-bit integer, got " + v.dump());
    out = static_cast<int>(d);
}

void convert(const Json& v, const std::string& field, uint64_t& out) {
    if (v.is_number_unsigned()) {   // exact, where a double would round large seeds
        out = v.get<uint64_t>();
        return;
    }
    const double d = wholeNumber(v, field);
    if (d < 0) throw SpecParseError(field, "must not be negative (unsigned integer), got " + v.dump());
    if (d >= 0x1p64) throw SpecParseError(field, "is out of range for a 64-bit integer, got " + v.dump());
    out = static_cast<uint64_t>(d);
}

void convert(const Json& v, const std::string& field, Method& out) {
    std::string s;
    convert(v, field, s);
    const auto m = parseMethod(s);
    if (!m) throw SpecParseError(field, "unknown method '" + s + "' (expected full, lora or relora)");
    out = *m;
}

void convert(const Json& v, const std::string& field, PruneMode& out) {
    std::string s;
    convert(v, field, s);
    const auto p = parsePruneMode(s);
    if (!p) throw SpecParseError(field, "unknown prune mode '" + s + "' (expected reset, random or magnitude)");
    out = *p;
}

void convert(const Json& v, const std::string& field, TargetMatrix& out) {
    std::string s;
    convert(v, field, s);
    const auto t = parseTarget(s);
    if (!t)
        throw SpecParseError(field, "unknown matrix '" + s + "' (expected wq, wk, wv, wo, gate, up or down)");
    out = *t;
}

template <class T>
void convert(const Json& v, const std::string& field, std::vector<T>& out) {
    if (!v.is_array()) wrongType(field, "an array", v);
    std::vector<T> items(v.size());
    for (size_t i = 0; i < v.size(); ++i) convert(v[i], field + "[" + std::to_string(i) + "]", items[i]);
    out = std::move(items);
}

// One JSON object of the spec being read. It remembers which keys were asked
// for, so that any other key (usually a typo) is an error instead of being
// silently ignored.
class Section {
public:
    Section(const Json& object, std::string path) : object_(object), path_(std::move(path)) {
        if (!object_.is_object()) wrongType(path_, "an object", object_);
    }

    template <class T>
    void read(const char* key, T& out) {
        known_.emplace_back(key);
        if (const auto it = object_.find(key); it != object_.end()) convert(*it, join(path_, key), out);
    }

    Section section(const char* key) {
        static const Json empty = Json::object();
        known_.emplace_back(key);
        const auto it = object_.find(key);
        return Section(it != object_.end() ? *it : empty, join(path_, key));
    }

    void rejectUnknown() const {
        for (const auto& item : object_.items()) {
            if (std::find(known_.begin(), known_.end(), item.key()) != known_.end()) continue;
            std::string expected;
            for (const auto& k : known_) expected += (expected.empty() ? "" : ", ") + k;
            throw SpecParseError(join(path_, item.key()), "unknown field (expected one of: " + expected + ")");
        }
    }

private:
    const Json& object_;
    std::string path_;
    std::vector<std::string> known_;
};

// Rewrites a spec of an older schema into the current one, one version at a
// time. Version 1 is the first, so no step exists yet: a schema change bumps
// kRunSpecSchemaVersion and adds its step as a case here; the default catches
// a bump that forgot to.
Json migrate(Json root, int fromVersion) {
    for (int v = fromVersion; v < kRunSpecSchemaVersion; ++v) {
        switch (v) {
        default: throw SpecParseError("schema_version", "no migration from version " + std::to_string(v));
        }
    }
    root["schema_version"] = kRunSpecSchemaVersion;
    return root;
}

int schemaVersionOf(const Json& root) {
    int version = kRunSpecSchemaVersion;   // a hand-written spec may leave it out
    if (const auto it = root.find("schema_version"); it != root.end()) convert(*it, "schema_version", version);
    const std::string current = std::to_string(kRunSpecSchemaVersion);
    if (version > kRunSpecSchemaVersion)
        throw SpecParseError("schema_version",
                             "version " + std::to_string(version) + " comes from a newer ReLoRA Workbench; "
                             "this one reads versions up to " + current + ", so update it to open this spec");
    if (version < 1)
        throw SpecParseError("schema_version", "must be between 1 and " + current + ", got " + std::to_string(version));
    return version;
}

// A partial spec means "the defaults of its method and preset, except for the
// fields given", so those two are read before anything else.
RunSpec startingPoint(const Json& root) {
    Method method = Method::FullRank;
    std::string preset = "tiny";
    if (const auto m = root.find("method"); m != root.end() && m->is_object())
        if (const auto k = m->find("kind"); k != m->end()) convert(*k, "method.kind", method);
    if (const auto m = root.find("model"); m != root.end() && m->is_object())
        if (const auto p = m->find("preset"); p != m->end()) convert(*p, "model.preset", preset);
    if (!isKnownPreset(preset))
        throw SpecParseError("model.preset", "unknown preset '" + preset + "' (expected tiny, 60m, 130m or custom)");
    return defaultSpec(method, preset == "custom" ? "tiny" : preset);
}

void readModel(Section s, ModelSpec& m) {
    s.read("preset", m.preset);
    s.read("d_model", m.dModel);
    s.read("d_ff", m.dFF);
    s.read("heads", m.heads);
    s.read("layers", m.layers);
    s.read("context", m.context);
    s.read("vocab", m.vocab);
    s.read("rope_theta", m.ropeTheta);
    s.read("norm_eps", m.normEps);
    s.read("init_std", m.initStd);
    s.rejectUnknown();
}

void readData(Section s, DataSpec& d) {
    s.read("corpus", d.corpus);
    s.read("synthetic", d.synthetic);
    s.read("validation_fraction", d.validationFraction);
    s.rejectUnknown();
}

void readMethod(Section s, MethodSpec& m) {
    s.read("kind", m.kind);
    s.read("targets", m.targets);
    s.read("rank", m.rank);
    s.read("alpha", m.alpha);
    s.read("rank_stabilised", m.rankStabilised);
    s.read("dropout", m.dropout);
    s.rejectUnknown();
}

void readReLoRA(Section s, ReLoRASpec& r) {
    s.read("reset_interval", r.resetInterval);
    s.read("restart_steps", r.restartSteps);
    s.read("restart_warmup", r.restartWarmup);
    s.read("prune", r.prune);
    s.read("prune_ratio", r.pruneRatio);
    s.read("warm_start_steps", r.warmStartSteps);
    s.rejectUnknown();
}

void readOptim(Section s, OptimSpec& o) {
    s.read("lr", o.lr);
    s.read("min_lr_ratio", o.minLrRatio);
    s.read("warmup", o.warmup);
    s.read("weight_decay", o.weightDecay);
    s.read("beta1", o.beta1);
    s.read("beta2", o.beta2);
    s.read("eps", o.eps);
    s.read("clip", o.clip);
    s.rejectUnknown();
}

void readTrain(Section s, TrainSpec& t) {
    s.read("batch", t.batch);
    s.read("steps", t.steps);
    s.read("seed", t.seed);
    s.read("eval_interval", t.evalInterval);
    s.read("eval_batches", t.evalBatches);
    s.read("log_interval", t.logInterval);
    s.read("rank_threshold", t.rankThreshold);
    s.read("snapshot_interval", t.snapshotInterval);
    s.read("checkpoint_interval", t.checkpointInterval);
    s.read("threads", t.threads);
    s.rejectUnknown();
}

Json toJsonValue(const RunSpec& s) {
    Json j;
    j["schema_version"] = s.schemaVersion;
    j["name"] = s.name;
    j["backend"] = s.backend;
    j["precision"] = s.precision;

    Json& m = j["model"];
    m["preset"] = s.model.preset;
    m["d_model"] = s.model.dModel;
    m["d_ff"] = s.model.dFF;
    m["heads"] = s.model.heads;
    m["layers"] = s.model.layers;
    m["context"] = s.model.context;
    m["vocab"] = s.model.vocab;
    m["rope_theta"] = jsonNumber(s.model.ropeTheta);
    m["norm_eps"] = jsonNumber(s.model.normEps);
    m["init_std"] = jsonNumber(s.model.initStd);

    Json& d = j["data"];
    d["corpus"] = s.data.corpus;
    d["synthetic"] = s.data.synthetic;
    d["validation_fraction"] = s.data.validationFraction;

    Json& me = j["method"];
    me["kind"] = toString(s.method.kind);
    me["targets"] = Json::array();
    for (TargetMatrix t : s.method.targets) me["targets"].push_back(toString(t));
    me["rank"] = s.method.rank;
    me["alpha"] = jsonNumber(s.method.alpha);
    me["rank_stabilised"] = s.method.rankStabilised;
    me["dropout"] = jsonNumber(s.method.dropout);

    Json& r = j["relora"];
    r["reset_interval"] = s.relora.resetInterval;
    r["restart_steps"] = s.relora.restartSteps;
    r["restart_warmup"] = s.relora.restartWarmup;
    r["prune"] = toString(s.relora.prune);
    r["prune_ratio"] = jsonNumber(s.relora.pruneRatio);
    r["warm_start_steps"] = s.relora.warmStartSteps;

    Json& o = j["optim"];
    o["lr"] = jsonNumber(s.optim.lr);
    o["min_lr_ratio"] = jsonNumber(s.optim.minLrRatio);
    o["warmup"] = s.optim.warmup;
    o["weight_decay"] = jsonNumber(s.optim.weightDecay);
    o["beta1"] = jsonNumber(s.optim.beta1);
    o["beta2"] = jsonNumber(s.optim.beta2);
    o["eps"] = jsonNumber(s.optim.eps);
    o["clip"] = jsonNumber(s.optim.clip);

    Json& t = j["train"];
    t["batch"] = s.train.batch;
    t["steps"] = s.train.steps;
    t["seed"] = s.train.seed;
    t["eval_interval"] = s.train.evalInterval;
    t["eval_batches"] = s.train.evalBatches;
    t["log_interval"] = s.train.logInterval;
    t["rank_threshold"] = jsonNumber(s.train.rankThreshold);
    t["snapshot_interval"] = s.train.snapshotInterval;
    t["checkpoint_interval"] = s.train.checkpointInterval;
    t["threads"] = s.train.threads;
    return j;
}

// ---- overrides -------------------------------------------------------------

std::optional<Json> tryParse(const std::string& text) {
    Json v = Json::parse(text, nullptr, /*allow_exceptions=*/false);
    if (v.is_discarded()) return std::nullopt;
    return v;
}

// The default spec's value at `path`, which tells what kind of value the
// field holds; throws when the path names no field.
const Json& fieldShape(const Json& schema, const std::string& path) {
    const Json* node = &schema;
    size_t start = 0;
    while (true) {
        const auto dot = path.find('.', start);
        const std::string key = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        const auto it = node->is_object() ? node->find(key) : node->end();
        if (it == node->end()) throw SpecParseError(path, "unknown field");
        node = &*it;
        if (dot == std::string::npos) return *node;
        start = dot + 1;
    }
}

// Command-line values come without JSON quoting ("name=my run",
// "method.targets=wq,wv"): text is read as JSON where it parses as JSON,
// except that a string field keeps the text as typed.
Json overrideValue(const Json& shape, const std::string& text) {
    const std::optional<Json> parsed = tryParse(text);
    if (shape.is_string()) return parsed && parsed->is_string() ? *parsed : Json(text);
    if (shape.is_array() && !(parsed && parsed->is_array())) {
        Json list = Json::array();
        std::string rest = text;
        while (!rest.empty()) {
            const auto comma = rest.find(',');
            const std::string item = trim(rest.substr(0, comma));
            rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
            if (!item.empty()) list.push_back(tryParse(item).value_or(Json(item)));
        }
        return list;
    }
    return parsed.value_or(Json(text));
}

// ---- corpus check ----------------------------------------------------------

// The corpus loader applies the same test; it is repeated here so that
// validation stays cheap and does not read whole files.
constexpr size_t kSniffBytes = 64 * 1024;

enum class FileKind { Text, Empty, Binary, Unreadable };

// `mayBeCut`: the bytes are the head of a longer file, so a character may be
// split at the end.
bool isUtf8(std::string_view s, bool mayBeCut) {
    static constexpr uint32_t kSmallest[] = {0, 0, 0x80, 0x800, 0x10000};   // shorter forms are overlong
    size_t i = 0;
    while (i < s.size()) {
        const auto lead = static_cast<unsigned char>(s[i]);
        size_t len = 1;
        uint32_t cp = lead;
        if (lead >= 0x80) {
            if ((lead & 0xE0) == 0xC0) {
                len = 2;
                cp = lead & 0x1F;
            } else if ((lead & 0xF0) == 0xE0) {
                len = 3;
                cp = lead & 0x0F;
            } else if ((lead & 0xF8) == 0xF0) {
                len = 4;
                cp = lead & 0x07;
            } else {
                return false;
            }
            for (size_t k = 1; k < len; ++k) {
                if (i + k == s.size()) return mayBeCut;
                const auto c = static_cast<unsigned char>(s[i + k]);
                if ((c & 0xC0) != 0x80) return false;
                cp = (cp << 6) | (c & 0x3F);
            }
            if (cp < kSmallest[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        }
        i += len;
    }
    return true;
}

FileKind classifyFile(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return FileKind::Unreadable;
    std::string head(kSniffBytes + 1, '\0');   // the extra byte tells whether the file goes on
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    if (in.bad()) return FileKind::Unreadable;
    head.resize(static_cast<size_t>(in.gcount()));
    if (head.empty()) return FileKind::Empty;
    const bool cut = head.size() > kSniffBytes;
    if (cut) head.resize(kSniffBytes);
    if (head.find('\0') != std::string::npos || !isUtf8(head, cut)) return FileKind::Binary;
    return FileKind::Text;
}

std::optional<std::string> folderProblem(const std::string& path) {
    std::error_code ec;
    for (auto it = fs::directory_iterator(path, ec); !ec && it != fs::directory_iterator(); it.increment(ec)) {
        std::error_code entryEc;
        if (it->is_regular_file(entryEc) && classifyFile(it->path()) == FileKind::Text) return std::nullopt;
    }
    if (ec) return "folder '" + path + "' cannot be read: " + ec.message();
    return "folder '" + path + "' holds no text file (binary, empty and unreadable files do not count)";
}

std::optional<std::string> corpusProblem(const std::string& path) {
    std::error_code ec;
    const fs::file_status st = fs::status(path, ec);
    if (st.type() == fs::file_type::not_found) return "'" + path + "' does not exist";
    if (ec) return "'" + path + "' cannot be reached: " + ec.message();
    if (fs::is_directory(st)) return folderProblem(path);
    if (!fs::is_regular_file(st)) return "'" + path + "' is neither a file nor a folder";
    const FileKind kind = classifyFile(path);
    if (kind == FileKind::Unreadable) return "'" + path + "' cannot be read (check its permissions)";
    if (kind == FileKind::Empty) return "'" + path + "' is an empty file";
    if (kind == FileKind::Binary) return "'" + path + "' is not a text file (it holds NUL bytes or is not UTF-8)";
    return std::nullopt;
}

// ---- validation ------------------------------------------------------------

using Errors = std::vector<SpecError>;

std::string str(int v) { return std::to_string(v); }
std::string str(double v) { return shortest(v); }
std::string str(float v) { return shortest(v); }

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
    if (!isKnownPreset(m.preset))
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
    notNegative(e, "train.threads", t.threads, "all cores");
}

}  // namespace

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

// ---- JSON ------------------------------------------------------------------

std::string toJson(const RunSpec& spec, int indent) { return toJsonValue(spec).dump(indent); }

RunSpec fromJson(const std::string& json) {
    Json root = parseText(json);
    if (!root.is_object()) wrongType("", "a JSON object", root);
    if (const int version = schemaVersionOf(root); version < kRunSpecSchemaVersion)
        root = migrate(std::move(root), version);

    RunSpec spec = startingPoint(root);
    Section top(root, "");
    top.read("schema_version", spec.schemaVersion);
    top.read("name", spec.name);
    top.read("backend", spec.backend);
    top.read("precision", spec.precision);
    readModel(top.section("model"), spec.model);
    readData(top.section("data"), spec.data);
    readMethod(top.section("method"), spec.method);
    readReLoRA(top.section("relora"), spec.relora);
    readOptim(top.section("optim"), spec.optim);
    readTrain(top.section("train"), spec.train);
    top.rejectUnknown();
    return spec;
}

std::string applyOverride(const std::string& json, const std::string& assignment) {
    const auto eq = assignment.find('=');
    const std::string path = trim(assignment.substr(0, eq));
    if (eq == std::string::npos || path.empty())
        throw SpecParseError("", "expected FIELD=VALUE (for example method.rank=64), got '" + assignment + "'");
    const Json schema = toJsonValue(RunSpec{});
    const Json& shape = fieldShape(schema, path);

    Json root = parseText(json);
    if (!root.is_object()) wrongType("", "a JSON object", root);
    Json* node = &root;
    size_t start = 0;
    for (auto dot = path.find('.'); dot != std::string::npos; start = dot + 1, dot = path.find('.', start)) {
        Json& child = (*node)[path.substr(start, dot - start)];
        if (child.is_null()) child = Json::object();   // a partial spec may lack the section
        if (!child.is_object()) wrongType(path.substr(0, dot), "an object", child);
        node = &child;
    }
    (*node)[path.substr(start)] = overrideValue(shape, assignment.substr(eq + 1));
    return root.dump(2);
}

}  // namespace relora
