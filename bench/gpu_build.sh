#!/bin/bash
# Configures and builds the relora CLI the way the GPU machine's scripts
# use it (CUDA for sm_90, no Qt, no tests):
#   bash bench/gpu_build.sh SOURCE_DIR BUILD_DIR LOG_DIR
# Run from the repository root; .devdeps/include must hold sqlite3.h and
# nlohmann/ (see ../shared/DEVICE.md). Prints the error lines on failure.
set -o pipefail
SRC=$1; BUILD=$2; LOGS=$3; D=$PWD/.devdeps
mkdir -p "$LOGS"
cmake -S "$SRC" -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DRELORA_WITH_QT=OFF -DBUILD_TESTING=OFF -DSQLite3_INCLUDE_DIR=$D/include \
  -DSQLite3_LIBRARY=/usr/lib/x86_64-linux-gnu/libsqlite3.so.0 \
  -DNLOHMANN_JSON_INCLUDE_DIR=$D/include > "$LOGS/configure.log" 2>&1 || { tail -40 "$LOGS/configure.log"; exit 1; }
cmake --build "$BUILD" --target relora -j16 > "$LOGS/build.log" 2>&1 || { grep -E "error" -A3 "$LOGS/build.log" | head -60; exit 1; }
