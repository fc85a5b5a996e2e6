#!/usr/bin/env bash
# scripts/gpu-deps.sh — the host libraries rlvr links (cJSON, OpenBLAS, PCRE2, utf8proc,
# GMP, libuv, and OpenMPI for the NCCL bootstrap) for a GPU machine that has CUDA but
# neither these Debian packages nor a way to fetch them.
#   scripts/gpu-deps.sh fetch            (here, with apt) downloads the .deb files into
#                                        .gpu-deps/ (git-ignored; carried to the GPU box)
#   source scripts/gpu-deps.sh install   (there) unpacks them under /tmp/rlvr-deps and
#                                        exports CMAKE_PREFIX_PATH / LD_LIBRARY_PATH /
#                                        RLVR_GPU_CMAKE_ARGS for the build.
# Packages already installed on the machine are used as they are.
set -u
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Debian packages the GPU build needs (their -dev and runtime parts), and OpenMPI for the
# NCCL bootstrap (mpirun, libmpi; relocated with OPAL_PREFIX).
debs=(libcjson1 libcjson-dev libopenblas0-openmp libopenblas-openmp-dev libgfortran5
      libquadmath0 libpcre2-8-0 libpcre2-16-0 libpcre2-32-0 libpcre2-posix3 libpcre2-dev
      libutf8proc2 libutf8proc-dev libgmp10 libgmpxx4ldbl libgmp-dev libuv1 libuv1-dev)
# OpenMPI and its libraries live apart (.gpu-deps/mpi): they are unpacked and put on the
# library path only where the machine has no MPI of its own (a system OpenMPI's plugins
# must not meet these libraries' older PMIx).
mpi_debs=(libopenmpi3 libopenmpi-dev openmpi-bin openmpi-common libpmix2 libhwloc15
          libevent-core-2.1-7 libevent-pthreads-2.1-7 libltdl7 libnuma1)
dev_pkgs=(libcjson-dev libopenblas-openmp-dev libpcre2-dev libutf8proc-dev libgmp-dev
          libuv1-dev)
case "${1:-}" in
fetch)
  mkdir -p "$here/.gpu-deps"
  (cd "$here/.gpu-deps" && apt-get download "${debs[@]}")
  mkdir -p "$here/.gpu-deps/mpi"
  (cd "$here/.gpu-deps/mpi" && apt-get download "${mpi_debs[@]}")
  ;;
install)
  prefix=/tmp/rlvr-deps
  have_all=1
  for p in "${dev_pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || have_all=0; done
  export RLVR_GPU_CMAKE_ARGS=""
  if [ $have_all = 0 ] || [ -n "${RLVR_GPU_DEPS_FORCE:-}" ]; then
    mkdir -p "$prefix"
    for f in "$here"/.gpu-deps/*.deb; do # (not mpi/: below)
      if command -v dpkg >/dev/null; then dpkg -x "$f" "$prefix"
      else (cd "$prefix" && ar p "$f" "$(ar t "$f" | grep '^data.tar')" | tar -xJ); fi
    done
    # The .pc files say prefix=/usr: point them at the unpacked tree.
    find "$prefix" -name '*.pc' -exec sed -i "s#=/usr#=$prefix/usr#g" {} +
    lib="$prefix/usr/lib/x86_64-linux-gnu"
    export PKG_CONFIG_PATH="$lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
    export CMAKE_PREFIX_PATH="$prefix/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
    export LD_LIBRARY_PATH="$lib:$lib/openblas-openmp${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    # Debian's multiarch headers (gmp.h) sit where only /usr's compiler looks by default.
    export CPATH="$prefix/usr/include/x86_64-linux-gnu:$prefix/usr/include${CPATH:+:$CPATH}"
    RLVR_GPU_CMAKE_ARGS="-DOPENBLAS_LIBRARY=$lib/openblas-openmp/libopenblas.so -DOPENBLAS_INCLUDE_DIR=$prefix/usr/include/x86_64-linux-gnu/openblas-openmp"
    echo "gpu-deps: unpacked $(ls "$here"/.gpu-deps/*.deb | wc -l) packages under $prefix"
  else
    echo "gpu-deps: system packages present"
  fi
  # OpenMPI, relocated: its wrappers and mpirun find their tree through OPAL_PREFIX.
  if command -v mpicc >/dev/null; then
    echo "gpu-deps: MPI of the machine: $(command -v mpicc)"
  elif ls "$here"/.gpu-deps/mpi/*.deb >/dev/null 2>&1; then
    mp=/tmp/rlvr-mpi
    mkdir -p "$mp"
    for f in "$here"/.gpu-deps/mpi/*.deb; do dpkg -x "$f" "$mp"; done
    mlib="$mp/usr/lib/x86_64-linux-gnu"
    export OPAL_PREFIX="$mp/usr"
    export PATH="$mp/usr/bin:$PATH"
    export LD_LIBRARY_PATH="$mlib:$mlib/openmpi/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    ln -sf mpirun.openmpi "$mp/usr/bin/mpirun"
    ln -sf mpicc.openmpi "$mp/usr/bin/mpicc"
    RLVR_GPU_CMAKE_ARGS="$RLVR_GPU_CMAKE_ARGS -DMPI_C_COMPILER=$mp/usr/bin/mpicc.openmpi"
    echo "gpu-deps: OpenMPI from $mp/usr (OPAL_PREFIX)"
  fi
  # NCCL: the CUDA toolkit's when present, else the one PyTorch's wheels carry.
  if ! ls /usr/include/nccl.h /usr/local/cuda/include/nccl.h >/dev/null 2>&1; then
    nccl_dir=$(python3 -c 'import nvidia.nccl, os; print(os.path.dirname(nvidia.nccl.__file__) if nvidia.nccl.__file__ else list(nvidia.nccl.__path__)[0])' 2>/dev/null || true)
    nccl_so=$(ls "$nccl_dir"/lib/libnccl.so* 2>/dev/null | head -1)
    if [ -n "$nccl_dir" ] && [ -f "$nccl_dir/include/nccl.h" ] && [ -n "$nccl_so" ]; then
      RLVR_GPU_CMAKE_ARGS="$RLVR_GPU_CMAKE_ARGS -DNCCL_INCLUDE_DIR=$nccl_dir/include -DNCCL_LIBRARY=$nccl_so"
      export LD_LIBRARY_PATH="$nccl_dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
      echo "gpu-deps: NCCL from $nccl_dir"
    else
      echo "gpu-deps: no NCCL found (nccl.h nowhere, no nvidia.nccl wheel with headers)"
    fi
  fi
  export RLVR_GPU_CMAKE_ARGS
  ;;
*)
  echo "usage: scripts/gpu-deps.sh fetch | source scripts/gpu-deps.sh install" >&2
  return 2 2>/dev/null || exit 2
  ;;
esac
