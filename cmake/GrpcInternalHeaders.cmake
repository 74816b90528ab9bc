# gRPC's internal headers, from Debian's source package of the *installed*
# gRPC (fetched by scripts/setup.sh into a cache outside the repository).
#
# Target grpc_shm::grpc_internal_headers: link it to every target whose
# sources include gRPC internal headers. It also undefines NDEBUG, because
# Debian built libgrpc without NDEBUG and several internal structs change
# layout with it (e.g. grpc_stream_refcount::object_type): mixing the two
# silently corrupts memory.
if(TARGET grpc_shm::grpc_internal_headers)
  return()
endif()

set(_grpc_version "${gRPC_VERSION}")
if(NOT GRPC_SHM_GRPC_SOURCE_DIR)
  if(DEFINED ENV{GRPC_SHM_CACHE})
    set(_cache "$ENV{GRPC_SHM_CACHE}")
  elseif(DEFINED ENV{XDG_CACHE_HOME})
    set(_cache "$ENV{XDG_CACHE_HOME}/grpc-shm")
  else()
    set(_cache "$ENV{HOME}/.cache/grpc-shm")
  endif()
  set(GRPC_SHM_GRPC_SOURCE_DIR "${_cache}/grpc-${_grpc_version}" CACHE PATH
      "gRPC source tree matching the installed gRPC (internal headers)")
endif()

if(NOT EXISTS "${GRPC_SHM_GRPC_SOURCE_DIR}/src/core/lib/transport/transport_impl.h")
  message(FATAL_ERROR
    "gRPC ${_grpc_version} internal headers not found in ${GRPC_SHM_GRPC_SOURCE_DIR}.\n"
    "Run scripts/setup.sh (it fetches Debian's grpc source package), or pass "
    "-DGRPC_SHM_GRPC_SOURCE_DIR=<grpc-${_grpc_version} source tree>.")
endif()

# The tree must be the installed version: a mismatch means wrong layouts.
file(STRINGS "${GRPC_SHM_GRPC_SOURCE_DIR}/CMakeLists.txt" _ver_line
     REGEX "^set\\(PACKAGE_VERSION +\"[0-9.]+\"\\)")
string(REGEX MATCH "[0-9]+\\.[0-9]+\\.[0-9]+" _src_version "${_ver_line}")
if(NOT _src_version STREQUAL _grpc_version)
  message(FATAL_ERROR "gRPC source tree is ${_src_version} but installed gRPC is "
                      "${_grpc_version}: internal headers must match exactly.")
endif()

add_library(grpc_shm_grpc_internal_headers INTERFACE)
add_library(grpc_shm::grpc_internal_headers ALIAS grpc_shm_grpc_internal_headers)
target_include_directories(grpc_shm_grpc_internal_headers SYSTEM INTERFACE
  "${GRPC_SHM_GRPC_SOURCE_DIR}")
target_compile_options(grpc_shm_grpc_internal_headers INTERFACE -UNDEBUG)
message(STATUS "gRPC internal headers: ${GRPC_SHM_GRPC_SOURCE_DIR} (${_src_version})")
