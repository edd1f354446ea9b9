// What the backend choice can offer on this machine, described for people:
// the CPU with its thread count, the CUDA device by name when one is usable,
// else why not.
#pragma once

#include <QString>

namespace relora::ui {

struct CudaDevice {
    bool usable = false;
    QString description;   // the device's name, or why there is none
};

QString cpuDescription();
// Probed once (creating a CUDA backend to ask its name), then remembered.
const CudaDevice& cudaDevice();

}  // namespace relora::ui
