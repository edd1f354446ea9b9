#include "app/cli/Arguments.h"

#include <charconv>

namespace relora::cli {

Arguments::Arguments(const std::vector<std::string>& args, const std::set<std::string>& flags,
                     const std::set<std::string>& valued) {
    for (size_t i = 0; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a.rfind("--", 0) != 0 || a == "--") {
            positionals_.push_back(a);
            continue;
        }
        std::string name = a.substr(2), inlineValue;
        const bool hasInline = name.find('=') != std::string::npos;
        if (hasInline) {
            inlineValue = name.substr(name.find('=') + 1);
            name = name.substr(0, name.find('='));
        }
        if (flags.count(name) && !hasInline) {
            flags_.insert(name);
        } else if (valued.count(name)) {
            if (hasInline) {
                values_.emplace(name, inlineValue);
            } else {
                if (i + 1 >= args.size()) throw UsageError("option --" + name + " needs a value");
                values_.emplace(name, args[++i]);
            }
        } else {
            throw UsageError("unknown option --" + name);
        }
    }
}

std::optional<std::string> Arguments::value(const std::string& name) const {
    const auto range = values_.equal_range(name);
    if (range.first == range.second) return std::nullopt;
    return std::prev(range.second)->second;  // the last one given wins
}

std::vector<std::string> Arguments::values(const std::string& name) const {
    std::vector<std::string> out;
    const auto range = values_.equal_range(name);
    for (auto it = range.first; it != range.second; ++it) out.push_back(it->second);
    return out;
}

std::string Arguments::valueOr(const std::string& name, const std::string& fallback) const {
    return value(name).value_or(fallback);
}

int Arguments::intValue(const std::string& name, int fallback) const {
    const auto v = value(name);
    if (!v) return fallback;
    int out = 0;
    const auto [end, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
    if (ec != std::errc() || end != v->data() + v->size())
        throw UsageError("--" + name + " expects an integer, got '" + *v + "'");
    return out;
}

}  // namespace relora::cli
