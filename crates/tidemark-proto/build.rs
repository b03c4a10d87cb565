//! Generates the gRPC code from `proto/tidemark/v1` with a vendored
//! `protoc`, so a fresh machine needs no system protobuf compiler.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "common.proto",
        "consensus.proto",
        "admin.proto",
        "bitcoin.proto",
        "lightning.proto",
    ]
    .map(|f| root.join("tidemark/v1").join(f));
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(config, &files, &[root])?;
    Ok(())
}
