# ctest platform.portable_posix_poison (GRPC_SHM_PORTABLE_POSIX builds):
#   cmake -DCXX=... -DHEADER=plugin/platform/posix/portable_posix_poison.h -DWORK_DIR=... -P GrpcShmPoisonTest.cmake
# Compiles, with the header forced in as the IPC core gets it, (1) a source
# that uses what the portable backends use (must compile, without
# __linux__), and (2) one that mentions each name the header poisons (each
# must be rejected as poisoned); and checks that the names issue 13 lists
# are among them.
cmake_policy(VERSION 3.25)
set(_required memfd_create eventfd SYS_futex epoll_create1 epoll_ctl epoll_wait
    timerfd_create timerfd_settime pipe2 accept4 SOCK_CLOEXEC SOCK_NONBLOCK MSG_NOSIGNAL
    SO_PEERCRED)

file(STRINGS ${HEADER} _pragmas REGEX "^#pragma GCC poison ")
set(_names)
foreach(_line IN LISTS _pragmas)
  string(REGEX REPLACE "^#pragma GCC poison " "" _line "${_line}")
  string(REGEX REPLACE " +" ";" _line "${_line}")
  list(APPEND _names ${_line})
endforeach()
foreach(_name IN LISTS _required)
  if(NOT _name IN_LIST _names)
    message(FATAL_ERROR "${HEADER} does not poison ${_name}")
  endif()
endforeach()

file(MAKE_DIRECTORY ${WORK_DIR})
file(WRITE ${WORK_DIR}/allowed.cc [=[
#ifdef __linux__
#error "__linux__ is defined in the portable core"
#endif
#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>
int main() {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 1;
  ::fcntl(sv[0], F_SETFD, FD_CLOEXEC);
  pollfd p = {sv[0], POLLIN, 0};
  ::poll(&p, 1, 0);
  int fd = ::shm_open("/x", O_RDWR | O_CREAT | O_EXCL, 0600);
  ::shm_unlink("/x");
  char c = 0;
  (void)::send(sv[1], &c, 1, MSG_DONTWAIT);
  return fd < 0;
}
]=])
execute_process(COMMAND ${CXX} -std=c++17 -fsyntax-only -include${HEADER} ${WORK_DIR}/allowed.cc
                RESULT_VARIABLE _rc ERROR_VARIABLE _err OUTPUT_VARIABLE _out)
if(NOT _rc EQUAL 0)
  message(FATAL_ERROR "the portable calls do not compile with the poison:\n${_out}${_err}")
endif()

set(_source "void f() {\n")
foreach(_name IN LISTS _names)
  string(APPEND _source "  (void)${_name};\n")
endforeach()
string(APPEND _source "}\n")
file(WRITE ${WORK_DIR}/poisoned.cc "${_source}")
execute_process(COMMAND ${CXX} -std=c++17 -fsyntax-only -include${HEADER} ${WORK_DIR}/poisoned.cc
                RESULT_VARIABLE _rc ERROR_VARIABLE _err OUTPUT_VARIABLE _out)
if(_rc EQUAL 0)
  message(FATAL_ERROR "Linux-only names compiled in the portable core")
endif()
set(_missed)
foreach(_name IN LISTS _names)
  if(NOT _err MATCHES "poisoned \"${_name}\"")
    list(APPEND _missed ${_name})
  endif()
endforeach()
if(_missed)
  message(FATAL_ERROR "not rejected as poisoned: ${_missed}\n${_err}")
endif()
list(LENGTH _names _count)
message(STATUS "${_count} Linux-only names rejected; the portable calls compile")
