// `relora spec` prints a default spec; `relora validate` checks one.
#include "app/cli/Commands.h"

#include <fstream>
#include <iostream>
#include <sstream>

namespace relora::cli {

std::string readTextFile(const std::string& path, const std::string& what) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + what + " '" + path + "'");
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

namespace {

Method methodOption(const Arguments& a) {
    const std::string name = a.valueOr("method", "relora");
    const auto m = parseMethod(name);
    if (!m) throw UsageError("--method must be full, lora or relora, not '" + name + "'");
    return *m;
}

}  // namespace

RunSpec loadSpec(const Arguments& a) {
    if (a.positionals().size() > 1) throw UsageError("expected at most one spec file");
    std::string json;
    if (a.positionals().empty()) {
        const std::string preset = a.valueOr("preset", "tiny");
        try {
            json = toJson(defaultSpec(methodOption(a), preset));
        } catch (const std::invalid_argument&) {
            throw UsageError("--preset must be tiny, 60m or 130m, not '" + preset + "'");
        }
    } else {
        if (a.value("method") || a.value("preset"))
            throw UsageError("--method and --preset choose a default spec; with a spec file use --set");
        json = readTextFile(a.positionals().front(), "spec file");
    }
    if (auto b = a.value("backend")) json = applyOverride(json, "backend=\"" + *b + "\"");
    if (auto t = a.value("threads")) json = applyOverride(json, "train.threads=" + *t);
    for (const std::string& s : a.values("set")) json = applyOverride(json, s);
    return fromJson(json);
}

int specCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {}, kSpecOptions);
    if (!a.positionals().empty()) throw UsageError("relora spec takes no file; use --method and --preset");
    std::cout << toJson(loadSpec(a)) << "\n";
    return 0;
}

int validateCommand(const std::vector<std::string>& args) {
    const Arguments a(args, {"no-corpus-check"}, kSpecOptions);
    if (a.positionals().size() != 1) throw UsageError("usage: relora validate SPEC.json [--set key=value ...]");
    const RunSpec spec = loadSpec(a);
    const auto errors = validate(spec, !a.flag("no-corpus-check"));
    if (errors.empty()) {
        std::cout << a.positionals().front() << ": valid " << toString(spec.method.kind) << " run spec\n";
        return 0;
    }
    std::cerr << a.positionals().front() << ": " << errors.size() << " problem(s)\n";
    for (const auto& e : errors) std::cerr << "  " << e.field << ": " << e.message << "\n";
    return 1;
}

}  // namespace relora::cli
