// The editor's field widgets. Numbers are typed as text ("3e-4" is how
// people write learning rates) and read in the C locale, like spec files;
// text that is no number becomes a problem of its spec field, shown at the
// field like the engine's own validation errors.
#pragma once

#include "core/RunSpec.h"

#include <cstdint>
#include <optional>
#include <vector>

class QLineEdit;
class QSpinBox;

namespace relora::ui {

// Wide ranges on purpose: the engine's validation, not the spin box, says
// what is too large, and why.
QSpinBox* makeIntField(int minimum, int maximum);
QLineEdit* makeNumberField();
void setNumber(QLineEdit* field, double value);
// The field's number, or nullopt with a problem for `path` appended.
std::optional<double> readNumber(const QLineEdit* field, const char* path, std::vector<SpecError>& problems);
// A whole number from 0 to 2⁶⁴ − 1 (seeds), or nullopt with a problem appended.
std::optional<uint64_t> readUnsigned(const QLineEdit* field, const char* path, std::vector<SpecError>& problems);
// "300, 600, 900" as steps, or nullopt with a problem for `path` appended.
std::optional<std::vector<int>> readIntList(const QLineEdit* field, const char* path,
                                            std::vector<SpecError>& problems);

}  // namespace relora::ui
