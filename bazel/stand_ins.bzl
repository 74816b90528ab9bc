"""Local stand-ins for the repositories Bazel 4 itself would download.

Bazel 4.2's built-in WORKSPACE prelude declares rules_cc, rules_java, platforms
and remote_coverage_tools as downloads, and its own C++ toolchain
(@bazel_tools//tools/cpp) and test rules load from them, so without these a
C++ build or test fetches from GitHub. Each stand-in holds only what Bazel
4.2's tools use, over its native rules. They are written from here rather than
kept as folders so that a project using grpc-shm as an external repository
gets them too (local_repository paths would be relative to that project).
"""

_RULES_CC_DEFS = '''"""Stand-in for rules_cc's defs.bzl: Bazel 4's native C++ rules."""

cc_binary = native.cc_binary
cc_import = native.cc_import
cc_library = native.cc_library
cc_proto_library = native.cc_proto_library
cc_test = native.cc_test
cc_toolchain = native.cc_toolchain
cc_toolchain_suite = native.cc_toolchain_suite
fdo_prefetch_hints = native.fdo_prefetch_hints
fdo_profile = native.fdo_profile
objc_import = native.objc_import
objc_library = native.objc_library
'''

_RULES_JAVA_DEFS = '''"""Stand-in for rules_java's defs.bzl: Bazel 4's native Java rules."""

java_binary = native.java_binary
java_import = native.java_import
java_library = native.java_library
java_lite_proto_library = native.java_lite_proto_library
java_package_configuration = native.java_package_configuration
java_plugin = native.java_plugin
java_proto_library = native.java_proto_library
java_runtime = native.java_runtime
java_test = native.java_test
java_toolchain = native.java_toolchain
'''

def _constraints(setting, values):
    return """package(default_visibility = ["//visibility:public"])

constraint_setting(name = "{setting}")

[constraint_value(
    name = value,
    constraint_setting = ":{setting}",
) for value in {values}]
""".format(setting = setting, values = repr(values))

# Bazel's test rules depend on these even without --collect_code_coverage;
# only `bazel coverage` runs them, and that does not work offline.
_COVERAGE_TOOLS = """package(default_visibility = ["//visibility:public"])

[sh_binary(
    name = name,
    srcs = ["unavailable.sh"],
) for name in [
    "coverage_report_generator",
    "lcov_merger",
]]
"""

_UNAVAILABLE = """#!/bin/sh
echo "coverage tools are not available in grpc-shm's offline Bazel build" >&2
exit 1
"""

_STAND_INS = {
    "rules_cc": {
        "BUILD.bazel": "",
        "cc/BUILD.bazel": 'exports_files(["defs.bzl"])\n',
        "cc/defs.bzl": _RULES_CC_DEFS,
    },
    "rules_java": {
        "BUILD.bazel": "",
        "java/BUILD.bazel": 'exports_files(["defs.bzl"])\n',
        "java/defs.bzl": _RULES_JAVA_DEFS,
    },
    "platforms": {
        "BUILD.bazel": "",
        "cpu/BUILD.bazel": _constraints("cpu", [
            "aarch64",
            "arm",
            "arm64",
            "mips64",
            "ppc",
            "riscv64",
            "s390x",
            "x86_32",
            "x86_64",
        ]),
        "os/BUILD.bazel": _constraints("os", [
            "android",
            "freebsd",
            "ios",
            "linux",
            "openbsd",
            "osx",
            "windows",
        ]),
    },
    "remote_coverage_tools": {
        "BUILD.bazel": _COVERAGE_TOOLS,
    },
}

def _stand_in_repo_impl(rctx):
    rctx.file("WORKSPACE", "workspace(name = %r)\n" % rctx.attr.repo)
    for path, content in _STAND_INS[rctx.attr.repo].items():
        rctx.file(path, content, executable = False)
    if rctx.attr.repo == "remote_coverage_tools":
        rctx.file("unavailable.sh", _UNAVAILABLE, executable = True)

_stand_in_repo = repository_rule(
    implementation = _stand_in_repo_impl,
    attrs = {"repo": attr.string(mandatory = True)},
)

def grpc_shm_stand_ins():
    """Declares every stand-in not declared already (by the WORKSPACE)."""
    for name in _STAND_INS:
        if name not in native.existing_rules():
            _stand_in_repo(name = name, repo = name)
