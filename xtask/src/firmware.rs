//! `cargo xtask build`: the firmware ELF and kernel8.img.

use anyhow::{bail, Context, Result};
use object::{Object, ObjectSegment};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::setup;

/// Where the Pi firmware (and QEMU, for a raw image) loads kernel8.img.
pub const LOAD_ADDRESS: u64 = 0x80000;

/// How data is verified after each move.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Verify {
    /// At least one stamp per 4 KiB page (default).
    Pages,
    /// Every byte.
    Full,
}

/// Build-time settings of the firmware.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct BuildOptions {
    /// Trace to embed (a vc4 `@@@` log, .log or .log.gz); default: the bundled default trace.
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Pool size, e.g. 128MiB, 16M, 4096 (bytes); default 48 MiB with the
    /// default trace, 128 MiB with any other.
    #[arg(long, value_name = "SIZE", value_parser = crate::size::parse_pool_size)]
    pub pool_size: Option<u64>,
    /// Verification after each move.
    #[arg(long, value_enum)]
    pub verify: Option<Verify>,
}

/// `cargo xtask build` arguments.
#[derive(clap::Args)]
pub struct BuildArgs {
    #[command(flatten)]
    pub options: BuildOptions,
}

/// What a build produced.
#[derive(Clone, Debug)]
pub struct Built {
    /// The firmware ELF (with the defmt table the host decodes against).
    pub elf: PathBuf,
    /// The raw image QEMU and the Pi boot.
    pub image: PathBuf,
}

/// `cargo xtask build`.
pub fn run(args: BuildArgs) -> Result<()> {
    let built = build(&args.options)?;
    println!("firmware ELF: {}", built.elf.display());
    println!("kernel8.img:  {}", built.image.display());
    Ok(())
}

/// The workspace root (xtask lives one level below it).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}

/// Cargo's target directory (CARGO_TARGET_DIR, or target/ in the workspace).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        None => workspace_root().join("target"),
    }
}

/// The trace embedded when `--trace` is not given (relative to the
/// workspace): the first 200 000 lines of the glmark2 trace. With
/// [`DEFAULT_TRACE_POOL_SIZE`] the four policies really differ on it (page-outs,
/// purges, compaction, a Rule 1 failure under some) while all eight runs stay
/// short under QEMU. `cargo xtask sim --trace traces/glmark2-200k.log.gz
/// --pool-size 48MiB` shows the same choice on the host.
pub const DEFAULT_TRACE: &str = "traces/glmark2-200k.log.gz";

/// The pool size that goes with [`DEFAULT_TRACE`] (its peak live bytes are
/// 59 MiB, so a 48 MiB pool is under pressure without thrashing).
pub const DEFAULT_TRACE_POOL_SIZE: u64 = 48 << 20;

/// The pool size of any other trace: the vc4 driver's CMA pool.
pub const DEFAULT_POOL_SIZE: u64 = 128 << 20;

impl BuildOptions {
    /// The pool size this build uses: `--pool-size`, else the default trace's
    /// own pool size, else 128 MiB.
    pub fn effective_pool_size(&self) -> u64 {
        match (self.pool_size, &self.trace) {
            (Some(size), _) => size,
            (None, None) => DEFAULT_TRACE_POOL_SIZE,
            (None, Some(_)) => DEFAULT_POOL_SIZE,
        }
    }
}

/// Compiles the trace the firmware embeds (POOLBED_TRACE_BIN) with the trace
/// crate (lenient mode: problems become warnings, as for every bundled trace).
pub fn trace_bin(options: &BuildOptions) -> Result<PathBuf> {
    let dir = target_dir().join("poolbed");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let source = match &options.trace {
        Some(path) => path.clone(),
        None => workspace_root().join(DEFAULT_TRACE),
    };
    let bytes = crate::trace_cmd::compile_lenient(&source)?;
    // Before trace.bin changes and before the build: a refused trace leaves
    // the last ELF and kernel8.img as they were, built together.
    check_embeddable(&source, bytes.len() as u64)?;
    let path = dir.join("trace.bin");
    // Rewritten only when it changes, so cargo does not rebuild the firmware needlessly.
    if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
        std::fs::write(&path, &bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    eprintln!(
        "xtask: embedding trace {} ({} bytes compiled)",
        source.display(),
        bytes.len()
    );
    Ok(path)
}

/// The largest kernel8.img [`extract_image`] lays out: far more than the
/// firmware needs, so anything larger is a segment in the wrong place.
pub const MAX_IMAGE_BYTES: u64 = 64 << 20;

/// Room in the image for the firmware's own code and data (about 0.3 MiB
/// today), so a trace up to [`MAX_EMBEDDED_TRACE_BYTES`] always fits.
const FIRMWARE_ROOM_BYTES: u64 = 4 << 20;

/// The largest compiled trace the firmware embeds.
pub const MAX_EMBEDDED_TRACE_BYTES: u64 = MAX_IMAGE_BYTES - FIRMWARE_ROOM_BYTES;

/// Refuses a compiled trace too large to embed, with its size and the
/// limit, before any build time is spent on it.
pub fn check_embeddable(source: &Path, compiled_bytes: u64) -> Result<()> {
    if compiled_bytes > MAX_EMBEDDED_TRACE_BYTES {
        bail!(
            "the trace {} compiles to {} bytes ({:.1} MiB), more than the {} bytes ({} MiB) the firmware image can embed              ({} MiB image, {} MiB kept for the firmware); replay it on the host with `cargo xtask sim --trace {}`,              or embed a part of it (e.g. the first lines: zcat FILE | head -n 1000000 | gzip > part.log.gz)",
            source.display(),
            compiled_bytes,
            compiled_bytes as f64 / (1u64 << 20) as f64,
            MAX_EMBEDDED_TRACE_BYTES,
            MAX_EMBEDDED_TRACE_BYTES >> 20,
            MAX_IMAGE_BYTES >> 20,
            FIRMWARE_ROOM_BYTES >> 20,
            source.display(),
        );
    }
    Ok(())
}

/// Builds the firmware (release profile) and extracts kernel8.img.
pub fn build(options: &BuildOptions) -> Result<Built> {
    setup::ensure_target()?;
    let trace = trace_bin(options)?;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(workspace_root())
        .args([
            "build",
            "--package",
            "poolbed-firmware",
            "--target",
            setup::TARGET,
            "--release",
        ])
        .env("POOLBED_TRACE_BIN", &trace);
    command.env(
        "POOLBED_POOL_SIZE",
        options.effective_pool_size().to_string(),
    );
    match options.verify {
        Some(Verify::Pages) => command.env("POOLBED_VERIFY", "pages"),
        Some(Verify::Full) => command.env("POOLBED_VERIFY", "full"),
        None => command.env_remove("POOLBED_VERIFY"),
    };
    let status = command
        .status()
        .context("running cargo build for the firmware")?;
    if !status.success() {
        bail!(
            "building the firmware failed (cargo build --package poolbed-firmware --target {})",
            setup::TARGET
        );
    }
    let out = target_dir().join(setup::TARGET).join("release");
    let elf = out.join("kernel8");
    let image = out.join("kernel8.img");
    let made = std::fs::read(&elf)
        .with_context(|| format!("reading {}", elf.display()))
        .and_then(|elf_bytes| {
            // Cortex-A53 erratum 835769: no load/store may be followed by a 64-bit
            // multiply-accumulate (see a53.rs); an image with such a pair is refused.
            crate::a53::check(&elf_bytes)?;
            extract_image(&elf_bytes)
        })
        .and_then(|raw| write_replacing(&image, &raw));
    if let Err(error) = made {
        // The ELF is new and the image would be the last build's: remove the
        // image so nothing boots one that does not match the ELF.
        let _ = std::fs::remove_file(&image);
        return Err(error);
    }
    Ok(Built { elf, image })
}

/// Writes `path` whole or not at all: into a file beside it, then renamed
/// over it, so an interrupted write never leaves half an image.
fn write_replacing(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    std::fs::write(&partial, bytes).with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path)
        .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))
}

/// Lays the loadable file contents of the ELF out from [`LOAD_ADDRESS`], as
/// the Pi firmware will place kernel8.img. Zero-initialised parts (BSS,
/// stacks, `.coherent`) are not in the file; the boot stub zeroes BSS.
pub fn extract_image(elf: &[u8]) -> Result<Vec<u8>> {
    let file = object::File::parse(elf).context("the firmware ELF does not parse")?;
    let mut image = Vec::new();
    for segment in file.segments() {
        let data = segment
            .data()
            .context("reading a segment of the firmware ELF")?;
        if data.is_empty() {
            continue;
        }
        let address = segment.address();
        if address < LOAD_ADDRESS {
            bail!("a loadable segment starts at {address:#x}, below the load address {LOAD_ADDRESS:#x}: check linker.ld");
        }
        let offset = (address - LOAD_ADDRESS) as usize;
        let end = offset + data.len();
        if end as u64 > MAX_IMAGE_BYTES {
            bail!(
                "the image would be {} MiB: a segment at {address:#x} is far from the load address",
                end >> 20
            );
        }
        if image.len() < end {
            image.resize(end, 0);
        }
        image[offset..end].copy_from_slice(data);
    }
    if image.is_empty() {
        bail!("the firmware ELF has no loadable content");
    }
    Ok(image)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_too_large_to_embed_is_refused_with_its_size_and_the_limit() {
        let source = Path::new("traces/huge.log.gz");
        assert!(check_embeddable(source, MAX_EMBEDDED_TRACE_BYTES).is_ok());
        let error = check_embeddable(source, MAX_EMBEDDED_TRACE_BYTES + 1)
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with(
                "the trace traces/huge.log.gz compiles to 62914561 bytes (60.0 MiB), more than the 62914560 bytes (60 MiB) the firmware image can embed"
            ),
            "{error}"
        );
        assert!(
            error.contains("cargo xtask sim --trace traces/huge.log.gz"),
            "{error}"
        );
    }
}
