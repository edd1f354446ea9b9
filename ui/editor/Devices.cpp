#include "ui/editor/Devices.h"

#include "core/Backend.h"

#include <QObject>

namespace relora::ui {

QString cpuDescription() {
    return QObject::tr("CPU (%1 threads)").arg(defaultCpuThreads());
}

const CudaDevice& cudaDevice() {
    static const CudaDevice device = [] {
        CudaDevice d;
        std::string why;
        if (!cudaAvailable(&why)) {
            d.description = QString::fromStdString(why);
            return d;
        }
        try {
            d.description = QString::fromStdString(createBackend("cuda")->deviceName());
            d.usable = true;
        } catch (const std::exception& e) {
            d.description = QString::fromStdString(e.what());
        }
        return d;
    }();
    return device;
}

}  // namespace relora::ui
