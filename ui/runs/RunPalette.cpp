#include "ui/runs/RunPalette.h"

#include <array>

namespace relora::ui {

QColor runColor(int64_t runId) {
    static constexpr std::array<QRgb, 10> kColors{0x4e79a7, 0xf28e2b, 0xe15759, 0x76b7b2, 0x59a14f,
                                                  0xedc948, 0xb07aa1, 0xff9da7, 0x9c755f, 0xbab0ac};
    const auto index = static_cast<size_t>(((runId - 1) % 10 + 10) % 10);
    return QColor::fromRgb(kColors[index]);
}

}  // namespace relora::ui
