// Command-line arguments of one `relora` subcommand: positionals, `--name
// value` options (repeatable ones keep every value) and bare `--flag`s.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

namespace relora::cli {

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Arguments {
public:
    // flags: options that take no value; valued: options that take one.
    // Anything else starting with "--" is a UsageError.
    Arguments(const std::vector<std::string>& args, const std::set<std::string>& flags,
              const std::set<std::string>& valued);

    const std::vector<std::string>& positionals() const { return positionals_; }
    bool flag(const std::string& name) const { return flags_.count(name) > 0; }
    std::optional<std::string> value(const std::string& name) const;
    std::vector<std::string> values(const std::string& name) const;
    std::string valueOr(const std::string& name, const std::string& fallback) const;
    int intValue(const std::string& name, int fallback) const;   // UsageError if not an integer

private:
    std::vector<std::string> positionals_;
    std::set<std::string> flags_;
    std::multimap<std::string, std::string> values_;
};

}  // namespace relora::cli
