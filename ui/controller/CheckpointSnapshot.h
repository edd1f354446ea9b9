// An HDF5 snapshot of a run at a step it checkpointed, for runs that are
// not training now (or steps other than the live one).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace relora::ui {

// Restores the run's checkpoint at `step` (empty: its latest) into a CPU
// model of the run's spec and writes it to `path`; returns the step.
// Throws std::runtime_error saying what is missing (no checkpoint at that
// step, unreadable checkpoint, unwritable path).
int64_t writeSnapshotFromCheckpoint(const std::string& database, int64_t runId,
                                    std::optional<int64_t> step, const std::string& path);

}  // namespace relora::ui
