// The `relora` subcommands. Each returns the process exit code; usage
// mistakes throw UsageError, and bad specs or corpora print their message.
#pragma once

#include "app/cli/Arguments.h"
#include "core/RunSpec.h"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace relora {
struct CheckpointData;
}

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
int headlineCommand(const std::vector<std::string>& args);   // app/cli/ExperimentCommands.cpp
int sweepCommand(const std::vector<std::string>& args);      // app/cli/ExperimentCommands.cpp

// The whole file; std::runtime_error "cannot read <what> '<path>'" otherwise.
std::string readTextFile(const std::string& path, const std::string& what);

// A run id as typed ("3" or "#3"); UsageError otherwise.
int64_t runIdArgument(const std::string& text);

// Options shared by every command that takes a spec.
inline const std::set<std::string> kSpecOptions = {"set", "method", "preset", "backend", "threads"};

// The spec from SPEC.json (first positional) or from --method/--preset
// defaults, with every --set key=value (and --backend/--threads) applied.
// Throws UsageError / SpecParseError / std::runtime_error with clear text.
RunSpec loadSpec(const Arguments& a);

// The execution path of every command that trains (app/cli/RunCommand.cpp).
// queueRun validates the spec (throws InvalidSpec) and adds it to the run
// database as 'queued', creating the database's folder; returns the run id.
int64_t queueRun(const RunSpec& spec, const std::string& dbPath);
// Trains run `runId` of the database (from `resumeFrom` when given) with the
// progress display, checkpoints, snapshots, an optional JSON-lines file and a
// clean stop on Ctrl-C. Returns the exit code of `relora run`: 0 finished,
// 1 failed, 130 stopped.
int executeRun(const RunSpec& spec, const std::string& dbPath, int64_t runId,
               const CheckpointData* resumeFrom, const std::string& resumedFrom,
               const std::optional<std::string>& jsonlPath);

}  // namespace relora::cli
