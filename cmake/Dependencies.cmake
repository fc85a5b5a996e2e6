# Finds the Debian packages rlvr builds on. scripts/setup.sh installs them.
find_package(PkgConfig)
find_package(OpenMP REQUIRED COMPONENTS C)
find_package(Threads REQUIRED)

# cJSON: through pkg-config when it is there, else by plain search (GPU boxes that get
# the unpacked Debian package via scripts/gpu-deps.sh have no pkg-config entry for it).
if(PKG_CONFIG_FOUND)
  pkg_check_modules(CJSON IMPORTED_TARGET libcjson)
endif()
if(NOT TARGET PkgConfig::CJSON)
  find_path(CJSON_INCLUDE_DIR cjson/cJSON.h)
  find_library(CJSON_LIBRARY cjson)
  if(NOT CJSON_INCLUDE_DIR OR NOT CJSON_LIBRARY)
    message(FATAL_ERROR "cJSON not found: install libcjson-dev (scripts/setup.sh does)")
  endif()
  add_library(PkgConfig::CJSON INTERFACE IMPORTED)
  set_target_properties(PkgConfig::CJSON PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${CJSON_INCLUDE_DIR}
                        INTERFACE_LINK_LIBRARIES ${CJSON_LIBRARY})
endif()
# OpenBLAS: the OpenMP flavour first, so BLAS and our OpenMP loops share one thread
# pool (the pthread flavour leaves OpenMP threads spinning while BLAS threads work).
find_path(OPENBLAS_INCLUDE_DIR cblas.h PATH_SUFFIXES openblas-openmp openblas openblas-pthread)
find_library(OPENBLAS_LIBRARY NAMES openblas PATH_SUFFIXES openblas-openmp openblas-pthread REQUIRED)
if(NOT OPENBLAS_INCLUDE_DIR)
  message(FATAL_ERROR "cblas.h not found: install libopenblas-dev (scripts/setup.sh does)")
endif()
if(PKG_CONFIG_FOUND)
  pkg_check_modules(LIBUV IMPORTED_TARGET libuv)
endif()

# CUDA backend: AUTO builds it when nvcc is found.
set(RLVR_CUDA AUTO CACHE STRING "Build the CUDA backend: AUTO, ON or OFF")
set_property(CACHE RLVR_CUDA PROPERTY STRINGS AUTO ON OFF)
set(RLVR_HAVE_CUDA OFF)
if(NOT RLVR_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  if(NOT CMAKE_CUDA_COMPILER)
    find_program(_rlvr_nvcc nvcc PATHS /usr/local/cuda/bin)
    if(_rlvr_nvcc)
      set(CMAKE_CUDA_COMPILER ${_rlvr_nvcc})
    endif()
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # sm_90 SASS for H100/H200 plus PTX so other cards can JIT.
      set(CMAKE_CUDA_ARCHITECTURES 90-real 90-virtual)
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(RLVR_HAVE_CUDA ON)
  elseif(RLVR_CUDA STREQUAL "ON")
    message(FATAL_ERROR "RLVR_CUDA=ON but no nvcc was found")
  endif()
endif()

# NCCL (GPU collectives) and MPI (launch/bootstrap, CPU collectives).
find_path(NCCL_INCLUDE_DIR nccl.h HINTS /usr/local/cuda/include ${CUDAToolkit_INCLUDE_DIRS})
find_library(NCCL_LIBRARY nccl HINTS /usr/local/cuda/lib64 ${CUDAToolkit_LIBRARY_DIR})
set(RLVR_HAVE_NCCL OFF)
if(RLVR_HAVE_CUDA AND NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
  set(RLVR_HAVE_NCCL ON)
endif()
find_package(MPI COMPONENTS C QUIET)
set(RLVR_HAVE_MPI ${MPI_C_FOUND})

message(STATUS "rlvr: CUDA=${RLVR_HAVE_CUDA} NCCL=${RLVR_HAVE_NCCL} MPI=${RLVR_HAVE_MPI} libuv=${LIBUV_FOUND}")
