#!/usr/bin/env bash
# scripts/gpu-deps.sh — the host libraries rlvr links (cJSON, OpenBLAS) for a GPU
# machine that has CUDA but neither these Debian packages nor a way to fetch them.
#   scripts/gpu-deps.sh fetch            (here, with apt) downloads the .deb files into
#                                        .gpu-deps/ (git-ignored; carried to the GPU box)
#   source scripts/gpu-deps.sh install   (there) unpacks them under /tmp/rlvr-deps and
#                                        exports CMAKE_PREFIX_PATH / LD_LIBRARY_PATH /
#                                        RLVR_GPU_CMAKE_ARGS for the build.
# Packages already installed on the machine are used as they are.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
case "${1:-}" in
fetch)
  mkdir -p "$here/.gpu-deps"
  (cd "$here/.gpu-deps" && apt-get download libcjson1 libcjson-dev libopenblas0-openmp \
      libopenblas-openmp-dev libgfortran5 libquadmath0)
  ;;
install)
  prefix=/tmp/rlvr-deps
  have_cjson=0; have_blas=0
  dpkg -s libcjson-dev >/dev/null 2>&1 && have_cjson=1
  { dpkg -s libopenblas-openmp-dev; } >/dev/null 2>&1 && have_blas=1
  if [ $have_cjson = 0 ] || [ $have_blas = 0 ] || [ -n "${RLVR_GPU_DEPS_FORCE:-}" ]; then
    mkdir -p "$prefix"
    for f in "$here"/.gpu-deps/*.deb; do
      if command -v dpkg >/dev/null; then dpkg -x "$f" "$prefix"
      else (cd "$prefix" && ar p "$f" "$(ar t "$f" | grep '^data.tar')" | tar -xJ); fi
    done
    # The .pc files say prefix=/usr: point them at the unpacked tree.
    find "$prefix" -name '*.pc' -exec sed -i "s#=/usr#=$prefix/usr#g" {} +
    lib="$prefix/usr/lib/x86_64-linux-gnu"
    export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export LD_LIBRARY_PATH="$lib:$lib/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export RLVR_GPU_CMAKE_ARGS="-DOPENBLAS_LIBRARY=$lib/openblas-openmp/libopenblas.so -DOPENBLAS_INCLUDE_DIR=$prefix/usr/include/x86_64-linux-gnu/openblas-openmp"
    echo "gpu-deps: unpacked $(ls "$here"/.gpu-deps/*.deb | wc -l) packages under $prefix"
  else
    export RLVR_GPU_CMAKE_ARGS=""
    echo "gpu-deps: system packages present"
  fi
  ;;
*)
  echo "usage: scripts/gpu-deps.sh fetch | source scripts/gpu-deps.sh install" >&2
  return 2 2>/dev/null || exit 2
  ;;
esac
