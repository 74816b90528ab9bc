"""Repositories over what scripts/setup.sh installs: nothing is downloaded.

The CMake build takes gRPC, protobuf, Abseil and GoogleTest from the system
(find_package) and gRPC's internal headers from the source tree that
scripts/setup.sh fetches into ~/.cache/grpc-shm (cmake/GrpcInternalHeaders.cmake).
These rules give Bazel the same: the libraries link with the flags pkg-config
reports, protoc and grpc_cpp_plugin are the system binaries, and the internal
headers come from the same cache directory, found the same way.

The system repositories carry the names a Bazel project already uses for these
dependencies (@com_google_protobuf, @com_github_grpc_grpc, @com_google_googletest),
so BUILD files written against them need no change here.
"""

load(":stand_ins.bzl", "grpc_shm_stand_ins")

def _pkg_config_libs(rctx, modules):
    """The -l/-L flags of `pkg-config --libs modules`, duplicates removed."""
    result = rctx.execute(["pkg-config", "--libs"] + modules)
    if result.return_code != 0:
        fail("pkg-config --libs %s failed (run scripts/setup.sh): %s" %
             (" ".join(modules), result.stderr))
    flags = [flag for flag in result.stdout.strip().split(" ") if flag]

    # Keep the last occurrence of each flag: a static archive must come after
    # everything that uses it, and shared libraries do not mind.
    return [flag for i, flag in enumerate(flags) if flag not in flags[i + 1:]]

def _pkg_config_version(rctx, module):
    result = rctx.execute(["pkg-config", "--modversion", module])
    if result.return_code != 0:
        fail("pkg-config --modversion %s failed (run scripts/setup.sh): %s" %
             (module, result.stderr))
    return result.stdout.strip()

def _system_repo_impl(rctx):
    for name, path in rctx.attr.binaries.items():
        if not rctx.path(path).exists:
            fail("%s not found (run scripts/setup.sh)" % path)
        rctx.symlink(path, name)
    substitutions = {}
    for key, modules in rctx.attr.pkg_config_libs.items():
        substitutions[key] = repr(_pkg_config_libs(rctx, modules.split(" ")))
    rctx.template("BUILD.bazel", rctx.attr.build_file, substitutions)
    rctx.file("WORKSPACE", "workspace(name = %r)\n" % rctx.name)

system_repo = repository_rule(
    implementation = _system_repo_impl,
    doc = "A repository of system binaries (symlinked) and a BUILD file whose " +
          "%{KEY} placeholders become pkg-config's link flags.",
    attrs = {
        "build_file": attr.label(mandatory = True, allow_single_file = True),
        # Name in the repository -> absolute path on the system.
        "binaries": attr.string_dict(),
        # Placeholder -> space-separated pkg-config modules.
        "pkg_config_libs": attr.string_dict(),
    },
    environ = ["PKG_CONFIG_PATH"],
    local = True,
)

def _grpc_source_repo_impl(rctx):
    # Found as cmake/GrpcInternalHeaders.cmake finds it: $GRPC_SHM_GRPC_SOURCE_DIR,
    # else <cache>/grpc-<installed version> with the cache at $GRPC_SHM_CACHE,
    # $XDG_CACHE_HOME/grpc-shm or ~/.cache/grpc-shm (where scripts/setup.sh puts it).
    version = _pkg_config_version(rctx, "grpc++")
    env = rctx.os.environ
    src = env.get("GRPC_SHM_GRPC_SOURCE_DIR", "")
    if not src:
        if env.get("GRPC_SHM_CACHE", ""):
            cache = env["GRPC_SHM_CACHE"]
        elif env.get("XDG_CACHE_HOME", ""):
            cache = env["XDG_CACHE_HOME"] + "/grpc-shm"
        else:
            cache = env.get("HOME", "") + "/.cache/grpc-shm"
        src = "%s/grpc-%s" % (cache, version)
    root = rctx.path(src)
    if not rctx.path(src + "/src/core/lib/transport/transport_impl.h").exists:
        fail(("gRPC %s internal headers not found in %s. Run scripts/setup.sh (it " +
              "fetches Debian's grpc source package), or set GRPC_SHM_GRPC_SOURCE_DIR.") %
             (version, src))

    # The tree must be the installed version: another version's internal
    # structs have other layouts, and nothing would notice until memory breaks.
    cmake_lists = rctx.read(root.get_child("CMakeLists.txt"))
    tree_version = ""
    for line in cmake_lists.splitlines():
        if line.startswith("set(PACKAGE_VERSION "):
            tree_version = line.split('"')[1]
            break
    if tree_version != version:
        fail(("gRPC source tree %s is %s but the installed gRPC is %s: internal headers " +
              "must match exactly.") % (src, tree_version, version))

    # Each header on its own: the tree has BUILD files of its own in places,
    # which would cut a glob over a symlinked src/ short at those packages.
    found = rctx.execute(["find", "src", "-name", "*.h"], working_directory = src)
    if found.return_code != 0:
        fail("listing the headers of %s failed: %s" % (src, found.stderr))
    for header in found.stdout.splitlines():
        rctx.symlink("%s/%s" % (src, header), header)
    rctx.template("BUILD.bazel", rctx.attr.build_file, {"%{VERSION}": version})
    rctx.file("WORKSPACE", "workspace(name = %r)\n" % rctx.name)

grpc_source_repo = repository_rule(
    implementation = _grpc_source_repo_impl,
    doc = "gRPC's internal headers from the source tree of the installed version.",
    attrs = {"build_file": attr.label(mandatory = True, allow_single_file = True)},
    environ = ["GRPC_SHM_GRPC_SOURCE_DIR", "GRPC_SHM_CACHE", "XDG_CACHE_HOME", "HOME"],
    local = True,
)

def grpc_shm_system_repos():
    """Every external repository grpc-shm's Bazel build uses; all local."""

    # Local stand-ins for what Bazel 4 itself would download (stand_ins.bzl).
    grpc_shm_stand_ins()

    system_repo(
        name = "com_google_protobuf",
        build_file = Label("//bazel:protobuf.BUILD"),
        binaries = {"protoc_bin": "/usr/bin/protoc"},
        pkg_config_libs = {"%{PROTOBUF_LIBS}": "protobuf"},
    )
    system_repo(
        name = "com_github_grpc_grpc",
        build_file = Label("//bazel:grpc.BUILD"),
        binaries = {"grpc_cpp_plugin_bin": "/usr/bin/grpc_cpp_plugin"},
        pkg_config_libs = {
            "%{GRPCXX_LIBS}": "grpc++",
            "%{GRPC_LIBS}": "grpc",
        },
    )
    system_repo(
        name = "com_google_absl",
        build_file = Label("//bazel:absl.BUILD"),
        pkg_config_libs = {"%{ABSL_LIBS}": "absl_strings absl_status absl_statusor"},
    )
    system_repo(
        name = "com_google_googletest",
        build_file = Label("//bazel:googletest.BUILD"),
        pkg_config_libs = {
            "%{GTEST_LIBS}": "gtest",
            "%{GTEST_MAIN_LIBS}": "gtest_main",
            "%{GMOCK_LIBS}": "gmock",
        },
    )
    grpc_source_repo(
        name = "grpc_shm_grpc_source",
        build_file = Label("//bazel:grpc_source.BUILD"),
    )
