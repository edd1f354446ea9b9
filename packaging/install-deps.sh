#!/usr/bin/env bash
# Installs every build, run and test dependency of ReLoRA Workbench from
# Debian 12's archive. Idempotent: packages already present are left alone.
# Run as root (CI and fresh containers) or through sudo.
set -euo pipefail

packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config git
  # GUI: Qt 6 Widgets, Charts, SVG export, Test
  qt6-base-dev qt6-charts-dev qt6-svg-dev libqt6opengl6-dev libgl-dev
  # engine: BLAS/LAPACK (OpenMP build, sharing one thread pool with our loops),
  # run database, snapshots, JSON run specs
  libopenblas-openmp-dev liblapacke-dev
  libsqlite3-dev sqlite3 libhdf5-dev nlohmann-json3-dev
  # headless GUI tests and screenshots
  xvfb xauth
  # parity tests and the PyTorch benchmark (Debian's /usr/bin/python3)
  python3 python3-torch python3-h5py python3-numpy
  # default corpus
  fortunes
  # DEB packaging checks
  dpkg-dev file desktop-file-utils appstream
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
