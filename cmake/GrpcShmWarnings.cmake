# Warnings for the project's own targets (not for third-party sources).
function(grpc_shm_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()
