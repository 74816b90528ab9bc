"""Compiler flags and the gRPC code generation macro of grpc-shm's Bazel build."""

# cmake/GrpcShmWarnings.cmake: the project's own targets only.
GRPC_SHM_COPTS = [
    "-Wall",
    "-Wextra",
    "-Wno-unused-parameter",
]

# For every target that includes gRPC's internal headers
# (@grpc_shm_grpc_source//:internal_headers), as in
# cmake/GrpcInternalHeaders.cmake: Debian built libgrpc without NDEBUG, and
# several internal structs change layout with it, so code compiled with NDEBUG
# (-c opt) against those headers would silently corrupt memory. A cc_library's
# copts do not reach its dependents, hence a constant every such target adds.
GRPC_INTERNAL_COPTS = ["-UNDEBUG"]

def _cc_grpc_codegen_impl(ctx):
    proto = ctx.attr.proto[ProtoInfo]
    root = proto.proto_source_root
    outs = []
    import_paths = []
    for src in proto.direct_sources:
        # The path protoc knows the file by (strip_import_prefix applied).
        path = src.path
        if root != "." and path.startswith(root + "/"):
            path = path[len(root) + 1:]
        elif src.short_path.startswith(ctx.label.package + "/"):
            path = src.short_path
        import_paths.append(path)
        stem = path[:-len(".proto")]
        outs.append(ctx.actions.declare_file("%s/%s.grpc.pb.h" % (ctx.label.name, stem)))
        outs.append(ctx.actions.declare_file("%s/%s.grpc.pb.cc" % (ctx.label.name, stem)))

    out_dir = "%s/%s/%s" % (ctx.bin_dir.path, ctx.label.package, ctx.label.name)
    descriptor_sets = proto.transitive_descriptor_sets.to_list()
    args = ctx.actions.args()
    args.add("--plugin=protoc-gen-grpc=" + ctx.executable._plugin.path)
    args.add("--grpc_out=" + out_dir)
    args.add("--descriptor_set_in=" + ":".join([d.path for d in descriptor_sets]))
    args.add_all(import_paths)
    ctx.actions.run(
        executable = ctx.executable._protoc,
        arguments = [args],
        inputs = descriptor_sets,
        tools = [ctx.executable._plugin],
        outputs = outs,
        mnemonic = "GrpcCppCodegen",
        progress_message = "Generating gRPC C++ stubs of %s" % ctx.attr.proto.label,
    )
    return [
        DefaultInfo(files = depset(outs)),
        OutputGroupInfo(
            headers = depset([f for f in outs if f.extension == "h"]),
            sources = depset([f for f in outs if f.extension == "cc"]),
        ),
    ]

_cc_grpc_codegen = rule(
    implementation = _cc_grpc_codegen_impl,
    doc = "Runs grpc_cpp_plugin over a proto_library's own .proto files.",
    attrs = {
        "proto": attr.label(mandatory = True, providers = [ProtoInfo]),
        "_protoc": attr.label(
            default = "@com_google_protobuf//:protoc",
            executable = True,
            cfg = "exec",
        ),
        "_plugin": attr.label(
            default = "@com_github_grpc_grpc//:grpc_cpp_plugin",
            executable = True,
            cfg = "exec",
        ),
    },
)

def grpc_shm_cc_grpc_library(name, proto, visibility = None, testonly = None):
    """Messages and gRPC service stubs of `proto` (a proto_library), in C++.

    What gRPC's cc_grpc_library(grpc_only = False) gives: `name` is a
    cc_library whose users include "<file>.pb.h" and "<file>.grpc.pb.h" (give
    the proto_library strip_import_prefix to drop its folder), and which links
    the system protobuf and gRPC. The messages come from Bazel's own
    cc_proto_library, the stubs from grpc_cpp_plugin.
    """
    native.cc_proto_library(
        name = name + "_messages",
        deps = [proto],
        testonly = testonly,
    )
    _cc_grpc_codegen(
        name = name + "_stubs",
        proto = proto,
        testonly = testonly,
    )
    for group in ["headers", "sources"]:
        native.filegroup(
            name = "%s_stubs_%s" % (name, group),
            srcs = [":%s_stubs" % name],
            output_group = group,
            testonly = testonly,
        )
    native.cc_library(
        name = name,
        srcs = [":%s_stubs_sources" % name],
        hdrs = [":%s_stubs_headers" % name],
        includes = [name + "_stubs"],
        deps = [
            ":%s_messages" % name,
            "@com_github_grpc_grpc//:grpc++",
        ],
        visibility = visibility,
        testonly = testonly,
    )
