# Shared by the bench scripts (source it): their `--name value` arguments and
# a grpc_bench server started in its own process.

# bench_parse_args NAME... -- "$@": each `--NAME value` (dashes in NAME as
# underscores) sets the variable NAME, which the caller gave its default;
# any other argument is an error.
bench_parse_args() {
  local allowed=" "
  while [ "$1" != -- ]; do
    allowed+="$1 "
    shift
  done
  shift
  while [ $# -gt 0 ]; do
    local name=${1#--}
    name=${name//-/_}
    if [[ $1 != --* || $allowed != *" $name "* || $# -lt 2 ]]; then
      echo "unknown argument $1" >&2
      exit 2
    fi
    printf -v "$name" '%s' "$2"
    shift 2
  done
}

# bench_require_bin BUILD: sets bin to the build's grpc_bench, or exits.
bench_require_bin() {
  bin="$1/bench/grpc/grpc_bench"
  [ -x "$bin" ] || { echo "no $bin: build first (bash scripts/build.sh)" >&2; exit 1; }
}

# bench_start_server DIR COMMAND...: runs COMMAND (a `grpc_bench server`
# command line, perhaps behind taskset or perf) with its standard input a
# fifo in DIR, and waits for it to say READY. Sets server_pid (the process
# to wait for), server_addr and server_grpc_pid (the server itself, for the
# client's --server_pid). Returns 1 if it never got ready. The server runs
# until bench_stop_server closes the fifo.
bench_start_server() {
  local dir=$1
  shift
  rm -f "$dir/fifo" "$dir/ready"
  mkfifo "$dir/fifo"
  "$@" <"$dir/fifo" >"$dir/ready" &
  server_pid=$!
  exec 9>"$dir/fifo"
  for _ in $(seq 200); do grep -q READY "$dir/ready" 2>/dev/null && break; sleep 0.05; done
  server_grpc_pid=""
  server_addr=""
  read -r _ server_grpc_pid server_addr <"$dir/ready" || return 1
}

# bench_stop_server: closes the server's fifo and waits for it; its status.
bench_stop_server() {
  exec 9>&-
  local rc=0
  wait "$server_pid" || rc=$?
  return $rc
}
