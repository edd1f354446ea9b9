#!/usr/bin/env bash
# Builds the release Debian package: the CPU backend only (so it runs on any
# Debian 12 machine, with or without NVIDIA's CUDA libraries), the GUI where
# Qt is installed, in a build folder of its own; then checks it with the
# package test.
#
#   bash packaging/build-deb.sh [BUILD_DIR]      (default: build-deb)
#   sudo apt install ./BUILD_DIR/relora-workbench_<version>_<arch>.deb
#
# A package built from a CUDA-enabled tree (plain `cpack -G DEB` in a build
# folder configured with the toolkit present) has the CUDA backend too, but
# its relora then needs NVIDIA's CUDA 13 libraries, which no Debian package
# provides: see packaging/CMakeLists.txt.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
build=$(realpath -m "${1:-$src/build-deb}")
generator=()
command -v ninja >/dev/null && generator=(-G Ninja)
cmake -S "$src" -B "$build" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release -DRELORA_CUDA=OFF -DBUILD_TESTING=OFF
cmake --build "$build" --parallel "$(nproc)"
rm -f "$build"/relora-workbench_*.deb
(cd "$build" && cpack -G DEB)
gui=0
[ -x "$build/app/relora-workbench" ] && gui=1
bash "$src/tests/test_package.sh" "$build" "$src" "$gui" 0
ls -l "$build"/relora-workbench_*.deb
