#!/usr/bin/env python3
"""Fails when the CMake and Bazel builds disagree about plugin/'s sources.

  python3 scripts/check_build_lists.py [--cmake-build DIR] [--bazel BAZEL]

CMake lists the .cc files of each target in its CMakeLists.txt; Bazel globs
each folder (BUILD.bazel). Either can miss a file the other has: a new backend
added to one build only, a test CMake runs and Bazel does not. This compares
what each build really uses, for every .cc and .h under plugin/:

  CMake: the sources its Ninja build compiles (DIR/build.ninja) and the
         headers those compilations read (`ninja -t deps`, so DIR must have
         been built);
  Bazel: the source files of every target (`bazel query`).

A file in one set and not the other is an error. Files in neither (other
platforms' backends, e.g. plugin/platform/windows/) are listed for
information. scripts/bazel.sh runs this after `bazel test //...`, against the
CMake build that scripts/test.sh made first.
"""

import argparse
import os
import re
import subprocess
import sys

REPO = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
SOURCE_EXTENSIONS = (".cc", ".h")


def under_plugin(path):
    """Repository-relative path if `path` is a .cc/.h under plugin/, else None."""
    real = os.path.realpath(path if os.path.isabs(path) else os.path.join(REPO, path))
    rel = os.path.relpath(real, REPO)
    if rel.startswith("plugin" + os.sep) and rel.endswith(SOURCE_EXTENSIONS):
        return rel
    return None


def cmake_files(build_dir):
    ninja_file = os.path.join(build_dir, "build.ninja")
    if not os.path.exists(ninja_file):
        sys.exit(f"check_build_lists: no {ninja_file}; build the CMake tree first "
                 "(bash scripts/build.sh)")
    compiled = set()
    # build <object>: CXX_COMPILER__<target>_<config> <source> [|| order-only deps]
    edge = re.compile(r"^build [^:]+: C(XX)?_COMPILER__\S+ (\S+)")
    with open(ninja_file) as f:
        for line in f:
            m = edge.match(line)
            if m:
                rel = under_plugin(m.group(2))
                if rel:
                    compiled.add(rel)
    deps = subprocess.run(["ninja", "-C", build_dir, "-t", "deps"], check=True,
                          capture_output=True, text=True).stdout
    read = set()
    for line in deps.splitlines():
        if line.startswith(" "):
            rel = under_plugin(os.path.join(build_dir, line.strip()))
            if rel:
                read.add(rel)
    headers = {p for p in read if p.endswith(".h")}
    if not any(p.endswith(".cc") for p in read):
        sys.exit(f"check_build_lists: `ninja -t deps` in {build_dir} lists nothing under "
                 "plugin/; build the CMake tree first")
    return compiled | headers


def bazel_files(bazel):
    query = subprocess.run(
        [bazel, "query", "--noshow_progress", 'kind("source file", deps(//plugin/...))'],
        cwd=REPO, check=True, capture_output=True, text=True).stdout
    files = set()
    for label in query.split():
        if label.startswith("//plugin"):
            package, _, name = label[2:].partition(":")
            rel = under_plugin(os.path.join(package, name))
            if rel:
                files.add(rel)
    return files


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cmake-build", default=os.path.join(REPO, "build"),
                        help="a built CMake (Ninja) tree (default: build/)")
    parser.add_argument("--bazel", default="bazel")
    args = parser.parse_args()

    cmake = cmake_files(os.path.realpath(args.cmake_build))
    bazel = bazel_files(args.bazel)
    on_disk = set()
    for root, _, names in os.walk(os.path.join(REPO, "plugin")):
        for name in names:
            rel = under_plugin(os.path.join(root, name))
            if rel:
                on_disk.add(rel)

    only_cmake = sorted(cmake - bazel)
    only_bazel = sorted(bazel - cmake)
    for path in sorted(on_disk - cmake - bazel):
        print(f"check_build_lists: in neither build (another platform's?): {path}")
    for path in only_cmake:
        print(f"check_build_lists: ERROR: in the CMake build, not in Bazel's: {path}")
    for path in only_bazel:
        print(f"check_build_lists: ERROR: in the Bazel build, not in CMake's: {path}")
    if only_cmake or only_bazel:
        print("check_build_lists: add the file to the other build (a CMakeLists.txt, or the "
              "BUILD.bazel of its folder: its globs and excludes), or remove it from both")
        return 1
    print(f"check_build_lists: CMake and Bazel agree on {len(cmake)} files under plugin/ "
          f"({sum(p.endswith('.cc') for p in cmake)} .cc, "
          f"{sum(p.endswith('.h') for p in cmake)} .h)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
