// The files of a run, in the folder the CLI uses too
// (store::runFilesDirectory: "<db>.files/run-<id>/", created on first use),
// so that a database and its checkpoints and snapshots move together.
#pragma once

#include <cstdint>
#include <string>

namespace relora::ui {

// "…/checkpoint-0000100.ckpt", named as the CLI names them.
std::string checkpointPath(const std::string& database, int64_t runId, int64_t step);
// "…/run-3-step-0000100.h5" (snapshotFileName()).
std::string snapshotPath(const std::string& database, int64_t runId, int64_t step);

// Creates the folder a file is to be written to; throws std::runtime_error
// naming the folder on failure.
void ensureParentFolder(const std::string& filePath);

}  // namespace relora::ui
