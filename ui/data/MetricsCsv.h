// The metrics of several runs as one CSV file in long form, one row per
// recorded value: run_id,run,method,key,step,value,wall_s. Every key of
// every run fits in it without a column per (run, key), and it loads
// straight into pandas or R.
#pragma once

#include "core/store/RunStore.h"

#include <cstdint>
#include <ostream>
#include <vector>

namespace relora::ui {

// Throws store::StoreError when the database cannot be read.
void writeMetricsCsv(store::RunReader& reader, const std::vector<int64_t>& runs, std::ostream& out);

}  // namespace relora::ui
