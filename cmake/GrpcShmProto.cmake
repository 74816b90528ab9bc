# grpc_shm_proto_library(<target> <proto file in protos/>)
# Generates the message and gRPC service code of one .proto with the system
# protoc and grpc_cpp_plugin into the build tree and builds it as a static
# library whose users include "<name>.pb.h" / "<name>.grpc.pb.h".
function(grpc_shm_proto_library target proto)
  get_filename_component(_name ${proto} NAME_WE)
  set(_src ${PROJECT_SOURCE_DIR}/protos/${proto})
  set(_gen ${CMAKE_CURRENT_BINARY_DIR}/generated)
  file(MAKE_DIRECTORY ${_gen})
  set(_outs ${_gen}/${_name}.pb.cc ${_gen}/${_name}.pb.h
            ${_gen}/${_name}.grpc.pb.cc ${_gen}/${_name}.grpc.pb.h)
  add_custom_command(
    OUTPUT ${_outs}
    COMMAND protobuf::protoc
      --cpp_out=${_gen} --grpc_out=${_gen}
      --plugin=protoc-gen-grpc=$<TARGET_FILE:gRPC::grpc_cpp_plugin>
      -I ${PROJECT_SOURCE_DIR}/protos ${_src}
    DEPENDS ${_src}
    COMMENT "Generating ${_name} messages and gRPC stubs")
  add_library(${target} STATIC ${_outs})
  target_include_directories(${target} PUBLIC ${_gen})
  target_link_libraries(${target} PUBLIC protobuf::libprotobuf gRPC::grpc++)
endfunction()
