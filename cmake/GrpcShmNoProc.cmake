# cmake -DFILES=a;b -DSTAMP=out -P GrpcShmNoProc.cmake: fails if a string
# literal in FILES names /proc (Linux-only), else touches STAMP. Used by
# GRPC_SHM_PORTABLE_POSIX builds (GrpcShmPortablePosix.cmake).
cmake_policy(VERSION 3.25)
set(_found "")
foreach(_file IN LISTS FILES)
  file(STRINGS ${_file} _lines REGEX "\"/proc")
  foreach(_line IN LISTS _lines)
    string(STRIP "${_line}" _line)
    string(APPEND _found "\n  ${_file}: ${_line}")
  endforeach()
endforeach()
if(_found)
  message(FATAL_ERROR "the portable POSIX core must not use /proc (Linux-only):${_found}")
endif()
file(TOUCH ${STAMP})
