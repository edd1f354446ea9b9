// The `relora` subcommands. Each returns the process exit code; usage
// mistakes throw UsageError, and bad specs or corpora print their message.
#pragma once

#include "app/cli/Arguments.h"
#include "core/RunSpec.h"

#include <string>
#include <vector>

namespace relora::cli {

int specCommand(const std::vector<std::string>& args);
int validateCommand(const std::vector<std::string>& args);
int runCommand(const std::vector<std::string>& args);
int resumeCommand(const std::vector<std::string>& args);
int listCommand(const std::vector<std::string>& args);
int showCommand(const std::vector<std::string>& args);
int metricsCommand(const std::vector<std::string>& args);
int compareCommand(const std::vector<std::string>& args);
int deleteCommand(const std::vector<std::string>& args);
int exportCommand(const std::vector<std::string>& args);
int benchCommand(const std::vector<std::string>& args);

// A run id as typed ("3" or "#3"); UsageError otherwise.
int64_t runIdArgument(const std::string& text);

// Options shared by every command that takes a spec.
inline const std::set<std::string> kSpecOptions = {"set", "method", "preset", "backend", "threads"};

// The spec from SPEC.json (first positional) or from --method/--preset
// defaults, with every --set key=value (and --backend/--threads) applied.
// Throws UsageError / SpecParseError / std::runtime_error with clear text.
RunSpec loadSpec(const Arguments& a);

}  // namespace relora::cli
