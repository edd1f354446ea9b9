// RunSpec's JSON form: writing, reading (with schema migration) and
// command-line overrides of single fields (DESIGN §2).
#include "core/RunSpec.h"

#include "core/RunSpecInternal.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <charconv>
#include <climits>
#include <cmath>
#include <optional>

namespace relora {

namespace {

// Ordered, so a written spec lists its fields in the order a person reads them.
using Json = nlohmann::ordered_json;

std::string trim(const std::string& s) {
    const auto first = s.find_first_not_of(" \t\r\n");
    if (first == std::string::npos) return {};
    return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

// A float stored as the double nearest its shortest decimal, so spec files
// say 0.001 rather than 0.0010000000474974513 and still read back exactly.
double jsonNumber(float f) {
    if (!std::isfinite(f)) return f;
    const std::string text = detail::shortest(f);
    double d = 0;
    std::from_chars(text.data(), text.data() + text.size(), d);
    return d;
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
    if (!detail::isKnownPreset(preset))
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

}  // namespace

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
