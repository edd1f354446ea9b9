// Where run databases and the files of their runs live by default, shared by
// the CLI and the GUI so both find the same runs.
#pragma once

#include <cstdint>
#include <string>

namespace relora::store {

// $RELORA_DB if set, else $XDG_DATA_HOME/relora-workbench/runs.sqlite
// (XDG_DATA_HOME defaulting to ~/.local/share). Creates no file.
std::string defaultDatabasePath();

// "<db>.files/run-<id>": the folder of a run's checkpoints and snapshots,
// created on demand. Throws std::runtime_error when it cannot be created.
std::string runFilesDirectory(const std::string& dbPath, int64_t runId);

}  // namespace relora::store
