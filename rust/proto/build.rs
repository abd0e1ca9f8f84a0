//! Compiles the protos with a vendored `protoc`, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC from the environment.
    unsafe { std::env::set_var("PROTOC", protoc) };
    let protos = [
        "proto/uiiit/edgeserver.proto",
        "proto/uiiit/edgecomputer.proto",
        "proto/uiiit/edgecontroller.proto",
        "proto/uiiit/edgerouter.proto",
        "proto/lambdaroute/control.proto",
    ];
    tonic_prost_build::configure().compile_protos(&protos, &["proto"])?;
    for proto in protos {
        println!("cargo:rerun-if-changed={proto}");
    }
    Ok(())
}
