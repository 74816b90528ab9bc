# GRPC_SHM_PORTABLE_POSIX: on Linux, build the IPC core the way macOS and the
# BSDs build it (shm_open memory, socketpair doorbells, a poll() EventSet, a
# thread-driven timer, fcntl instead of creation flags) with every Linux-only
# call, flag and header made a compile error, so that Linux-only code cannot
# creep into what those systems compile. The transport and the tests are
# built for Linux as usual and run against that core (with
# GRPC_POLL_STRATEGY=poll, the engine gRPC uses on macOS).
# plugin/platform/CMakeLists.txt picks the backends.
option(GRPC_SHM_PORTABLE_POSIX
       "Linux only: build the macOS/BSD (portable POSIX) backends, Linux-only calls poisoned" OFF)

if(GRPC_SHM_PORTABLE_POSIX)
  if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux")
    message(FATAL_ERROR "GRPC_SHM_PORTABLE_POSIX checks the portable backends on Linux; "
                        "on ${CMAKE_SYSTEM_NAME} they are what a normal build uses")
  endif()
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "GNU|Clang")
    message(FATAL_ERROR "GRPC_SHM_PORTABLE_POSIX needs #pragma GCC poison (GCC or Clang)")
  endif()
  # Every other source of the project reads the core's headers as the core
  # does (see the header); the core's own sources get the poison instead
  # (grpc_shm_portable_posix_core), which also reads them that way.
  # Tests that check Linux-only guarantees (sockets close-on-exec from
  # creation, say) check the portable ones instead.
  add_compile_definitions(GRPC_SHM_PORTABLE_POSIX=1)
  # (-include joined to its file, as GCC and Clang accept: CMake would
  # de-duplicate a separate "-include". -iquote: the header is forced into
  # targets that do not otherwise see the project's headers, generated
  # protobuf code for one.)
  set(_other "$<AND:$<COMPILE_LANGUAGE:CXX>,$<NOT:$<STREQUAL:$<TARGET_PROPERTY:NAME>,grpc_shm_ipc>>>")
  add_compile_options(
    "$<${_other}:-iquote${PROJECT_SOURCE_DIR}>"
    "$<${_other}:-include${PROJECT_SOURCE_DIR}/plugin/platform/posix/portable_posix_core_headers.h>")
endif()

# Makes every source of `target` (the IPC core) include
# plugin/platform/posix/portable_posix_poison.h first. EXEMPT: sources left alone (the one Linux
# function a Linux build of the portable core still needs: peer credentials,
# since Linux has no getpeereid). UNDEF_ONLY: sources that probe the macro
# flags with #ifdef, which poison would turn into errors; they see the
# flags undefined, as on macOS. KEEP_MSG_NOSIGNAL: UNDEF_ONLY sources that
# send without the platform's SendNoSigpipe (posix/posix_internal.h) keep
# MSG_NOSIGNAL: on macOS their sockets carry SO_NOSIGPIPE, which Linux does
# not have, so without it a send to a dead peer would kill the process with
# SIGPIPE here and nowhere else.
function(grpc_shm_portable_posix_core target)
  cmake_parse_arguments(ARG "" "" "EXEMPT;UNDEF_ONLY;KEEP_MSG_NOSIGNAL" ${ARGN})
  get_target_property(_sources ${target} SOURCES)
  get_target_property(_dir ${target} SOURCE_DIR)
  set(_exempt)
  foreach(_src IN LISTS ARG_EXEMPT)
    get_filename_component(_abs ${_src} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND _exempt ${_abs})
  endforeach()
  set(_undef_only)
  foreach(_src IN LISTS ARG_UNDEF_ONLY)
    get_filename_component(_abs ${_src} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND _undef_only ${_abs})
  endforeach()
  set(_keep_nosignal)
  foreach(_src IN LISTS ARG_KEEP_MSG_NOSIGNAL)
    get_filename_component(_abs ${_src} ABSOLUTE BASE_DIR ${CMAKE_CURRENT_SOURCE_DIR})
    list(APPEND _keep_nosignal ${_abs})
  endforeach()
  set(_poison ${PROJECT_SOURCE_DIR}/plugin/platform/posix/portable_posix_poison.h)
  set(_checked)
  foreach(_src IN LISTS _sources)
    get_filename_component(_abs ${_src} ABSOLUTE BASE_DIR ${_dir})
    if(_abs IN_LIST _exempt)
      continue()
    endif()
    set_property(SOURCE ${_abs} TARGET_DIRECTORY ${target} APPEND PROPERTY
                 COMPILE_OPTIONS "-include${_poison}")
    if(_abs IN_LIST _undef_only)
      set_property(SOURCE ${_abs} TARGET_DIRECTORY ${target} APPEND PROPERTY
                   COMPILE_DEFINITIONS GRPC_SHM_PORTABLE_POSIX_UNDEF_ONLY)
    endif()
    if(_abs IN_LIST _keep_nosignal)
      set_property(SOURCE ${_abs} TARGET_DIRECTORY ${target} APPEND PROPERTY
                   COMPILE_DEFINITIONS GRPC_SHM_PORTABLE_POSIX_KEEP_MSG_NOSIGNAL)
    endif()
    list(APPEND _checked ${_abs})
  endforeach()

  # /proc is a string, out of the poison's reach: grep the poisoned sources
  # and the core's headers for it at every build that touches them.
  file(GLOB _headers ${PROJECT_SOURCE_DIR}/plugin/ipc/*.h ${PROJECT_SOURCE_DIR}/plugin/platform/*.h)
  list(APPEND _checked ${_headers})
  set(_stamp ${CMAKE_CURRENT_BINARY_DIR}/${target}_no_proc.stamp)
  add_custom_command(
    OUTPUT ${_stamp}
    COMMAND ${CMAKE_COMMAND} "-DFILES=${_checked}" -DSTAMP=${_stamp}
            -P ${PROJECT_SOURCE_DIR}/cmake/GrpcShmNoProc.cmake
    DEPENDS ${_checked} ${PROJECT_SOURCE_DIR}/cmake/GrpcShmNoProc.cmake
    COMMENT "Checking that the portable POSIX core does not read /proc"
    VERBATIM)
  add_custom_target(${target}_no_proc DEPENDS ${_stamp})
  add_dependencies(${target} ${target}_no_proc)
endfunction()
