//! Generates the gRPC code from `proto/` without a system `protoc`: protox parses the files in
//! pure Rust, tonic-prost-build generates from the descriptor set. The encoded descriptor set is
//! kept in OUT_DIR for gRPC server reflection.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read at run time, not with env!(): the compiled build script is shared between checkouts
    // that use one target directory, and must not remember the path it was compiled in.
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        root.join("statusmesh/admin/v1/admin.proto"),
        root.join("statusmesh/peer/v1/peer.proto"),
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("statusmesh_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )?;
    // Admin messages serialize to JSON for `statusctl --output json`.
    tonic_prost_build::configure()
        .type_attribute(".statusmesh.admin.v1", "#[derive(serde::Serialize)]")
        .compile_fds(fds)?;
    Ok(())
}
