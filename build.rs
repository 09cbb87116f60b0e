//! Build script of the firmware: the linker script (aarch64 only, so host
//! builds of the workspace are unaffected) and the build-time settings.

fn main() {
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("aarch64") && target.ends_with("-none") {
        let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
        println!("cargo:rustc-link-arg=-T{dir}/linker.ld");
        // defmt's linker script (found through the -L path defmt's build script adds):
        // the .defmt section the host decodes against, and the default timestamp.
        println!("cargo:rustc-link-arg=-Tdefmt.x");
        println!("cargo:rerun-if-changed=linker.ld");
        println!("cargo:rerun-if-changed=boot/boot.s");
    }
    // Settings `cargo xtask build` passes; the firmware reads them with env!/option_env!.
    for var in ["POOLBED_POOL_SIZE", "POOLBED_VERIFY", "POOLBED_TRACE_BIN"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // The embedded trace: rebuild when the file changes too.
    if let Ok(path) = std::env::var("POOLBED_TRACE_BIN") {
        if !path.is_empty() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
}
