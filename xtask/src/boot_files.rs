//! The Pi's own boot firmware: `bootcode.bin` (read by the boot ROM),
//! `start.elf` (the VideoCore firmware it loads) and `fixup.dat` (its memory
//! split), which no one may ship but the Raspberry Pi's and Debian's
//! archives. [`locate`] takes them, first found wins, from:
//!
//! 1. `--boot-firmware DIR`, when given (and then only from there);
//! 2. Debian's `raspi-firmware` package, if installed (`/usr/lib/raspi-firmware`);
//! 3. the copy fetched earlier, kept in `target/raspi-firmware/<version>/`
//!    with a `SHA256SUMS` that is checked on every use;
//! 4. Debian's archive: `apt-get download raspi-firmware`. The package is in
//!    the non-free-firmware component (non-free before bookworm), which a
//!    default Debian install does not enable, so this enables it for these
//!    commands only: a sources list of our own, an empty sources parts
//!    directory, and our own lists and cache directories, all under
//!    `target/raspi-firmware/apt/`, passed with `-o Dir::...`. The system's
//!    sources, lists and caches are never written, and nothing needs root:
//!    as a user apt-get works in its own directories without locking, and as
//!    root it fetches as its `_apt` user where that can write (else it says
//!    so and fetches as root). The mirror, release and signing key are the
//!    system's own Debian entry; the release files are checked against the
//!    key as for any apt source. The three files come out of the `.deb`
//!    (an `ar` archive whose `data.tar.xz` holds them; `.gz` and plain tar
//!    are read too).
//!
//! Where none of that works (no apt-get, no Debian source, no network) it
//! stops with the commands to run.

use anyhow::{bail, ensure, Context, Result};
use sha2::{Digest, Sha256};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The files the Pi 3 needs from its firmware, in the order it reads them.
pub const BOOT_FILES: [&str; 3] = ["bootcode.bin", "start.elf", "fixup.dat"];
/// Where Debian's raspi-firmware package installs them.
pub const INSTALLED_DIR: &str = "/usr/lib/raspi-firmware";
const PACKAGE: &str = "raspi-firmware";
/// The same directory inside the package's data archive.
const DIR_IN_PACKAGE: &str = "usr/lib/raspi-firmware";
/// In a cache directory: `sha256sum` lines (so `sha256sum -c` checks them
/// too), and the package version.
const SUMS_FILE: &str = "SHA256SUMS";
const VERSION_FILE: &str = "VERSION";
/// The apt work directory inside the cache root.
const APT_DIR: &str = "apt";

/// One boot file and its SHA-256.
#[derive(Debug, Clone)]
pub struct BootFile {
    pub name: &'static str,
    pub bytes: Vec<u8>,
    /// Lower-case hex.
    pub sha256: String,
}

/// Where the boot files came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `--boot-firmware DIR`.
    Given(PathBuf),
    /// Debian's raspi-firmware, installed here (its version when dpkg knows it).
    Installed(Option<String>),
    /// A raspi-firmware package fetched before and cached in `dir`.
    Cached { version: String, dir: PathBuf },
    /// The raspi-firmware package just fetched with apt-get, now cached in `dir`.
    Fetched { version: String, dir: PathBuf },
}

/// The three boot files, in [`BOOT_FILES`] order.
#[derive(Debug, Clone)]
pub struct BootFiles {
    pub origin: Origin,
    pub files: Vec<BootFile>,
}

impl BootFiles {
    /// The package version, where the files come from the Debian package.
    pub fn version(&self) -> Option<&str> {
        match &self.origin {
            Origin::Given(_) => None,
            Origin::Installed(version) => version.as_deref(),
            Origin::Cached { version, .. } | Origin::Fetched { version, .. } => Some(version),
        }
    }

    /// Where they come from, in a few words, for the user and for config.txt.
    pub fn describe(&self) -> String {
        match &self.origin {
            Origin::Given(dir) => format!("from {}", dir.display()),
            Origin::Installed(version) => format!(
                "Debian {PACKAGE} {}(installed, {INSTALLED_DIR})",
                version
                    .as_deref()
                    .map(|v| format!("{v} "))
                    .unwrap_or_default()
            ),
            Origin::Cached { version, dir } => {
                format!("Debian {PACKAGE} {version} (cached in {})", dir.display())
            }
            Origin::Fetched { version, dir } => {
                format!(
                    "Debian {PACKAGE} {version} (fetched, cached in {})",
                    dir.display()
                )
            }
        }
    }

    /// `config.txt` comment lines naming the files' source and their
    /// SHA-256, so a card can be checked against what built it.
    pub fn config_comment(&self) -> String {
        let source = match &self.origin {
            Origin::Given(_) => "given with --boot-firmware".to_string(),
            _ => match self.version() {
                Some(version) => format!("Debian {PACKAGE} {version}"),
                None => format!("Debian {PACKAGE}"),
            },
        };
        let mut text = format!("# boot files: {source}\n");
        for file in &self.files {
            let _ = writeln!(text, "# sha256 {} {}", file.sha256, file.name);
        }
        text
    }

    /// (name, bytes) pairs, as the card image writer takes them.
    pub fn card_files(&self) -> Vec<(&str, &[u8])> {
        self.files
            .iter()
            .map(|f| (f.name, f.bytes.as_slice()))
            .collect()
    }
}

/// The boot files, from `given` or else from the first of the places in the
/// module docs that has them, fetching the Debian package if need be.
pub fn locate(given: Option<&Path>) -> Result<BootFiles> {
    locate_in(
        given,
        Path::new(INSTALLED_DIR),
        &cache_root(),
        fetch_with_apt,
    )
}

/// `target/raspi-firmware`: fetched packages' files, one directory per version.
pub fn cache_root() -> PathBuf {
    crate::firmware::target_dir().join("raspi-firmware")
}

/// [`locate`] with its places given: `fetch` downloads the package's `.deb`
/// using the work directory it is handed, and returns the file's path.
fn locate_in(
    given: Option<&Path>,
    installed: &Path,
    cache: &Path,
    fetch: impl FnOnce(&Path) -> Result<PathBuf>,
) -> Result<BootFiles> {
    if let Some(dir) = given {
        let missing: Vec<_> = BOOT_FILES
            .iter()
            .filter(|n| !dir.join(n).is_file())
            .collect();
        ensure!(
            missing.is_empty(),
            "--boot-firmware {}: missing {}",
            dir.display(),
            missing
                .iter()
                .map(|n| n.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return Ok(BootFiles {
            origin: Origin::Given(dir.to_path_buf()),
            files: read_files(dir)?,
        });
    }
    if BOOT_FILES.iter().all(|n| installed.join(n).is_file()) {
        return Ok(BootFiles {
            origin: Origin::Installed(installed_version()),
            files: read_files(installed)?,
        });
    }
    if let Some(hit) = cached(cache)? {
        return Ok(hit);
    }
    let work = cache.join(APT_DIR);
    let deb_path = fetch(&work)?;
    let deb =
        std::fs::read(&deb_path).with_context(|| format!("reading {}", deb_path.display()))?;
    let package = unpack_deb(&deb).with_context(|| format!("unpacking {}", deb_path.display()))?;
    let dir = store(cache, &package)?;
    Ok(BootFiles {
        origin: Origin::Fetched {
            version: package.version,
            dir,
        },
        files: package.files,
    })
}

fn read_files(dir: &Path) -> Result<Vec<BootFile>> {
    BOOT_FILES
        .iter()
        .map(|name| {
            let path = dir.join(name);
            let bytes =
                std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            Ok(boot_file(name, bytes))
        })
        .collect()
}

fn boot_file(name: &'static str, bytes: Vec<u8>) -> BootFile {
    let sha256 = sha256_hex(&bytes);
    BootFile {
        name,
        bytes,
        sha256,
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// The installed package's version, if dpkg can say.
fn installed_version() -> Option<String> {
    let out = Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", PACKAGE])
        .output()
        .ok()?;
    let version = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !version.is_empty()).then_some(version)
}

/// The most recently stored cached version whose files match its
/// `SHA256SUMS`; a damaged one is passed over with a note (and replaced when
/// the same version is fetched again). `.partial` directories (an
/// interrupted store) and the apt work directory are not versions.
fn cached(cache: &Path) -> Result<Option<BootFiles>> {
    let entries = match std::fs::read_dir(cache) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error).with_context(|| format!("reading {}", cache.display())),
    };
    let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            let hidden = p
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            !hidden && p.is_dir() && p.join(SUMS_FILE).is_file()
        })
        .map(|p| {
            let stored = std::fs::metadata(p.join(SUMS_FILE))
                .and_then(|m| m.modified())
                .unwrap_or(std::time::UNIX_EPOCH);
            (stored, p)
        })
        .collect();
    dirs.sort();
    for (_, dir) in dirs.iter().rev() {
        match verified(dir) {
            Ok(files) => return Ok(Some(files)),
            Err(error) => eprintln!("note: not using {}: {error:#}", dir.display()),
        }
    }
    Ok(None)
}

fn verified(dir: &Path) -> Result<BootFiles> {
    let sums = std::fs::read_to_string(dir.join(SUMS_FILE))?;
    let version = std::fs::read_to_string(dir.join(VERSION_FILE))
        .with_context(|| format!("no {VERSION_FILE}"))?
        .trim()
        .to_string();
    let files = read_files(dir)?;
    for file in &files {
        let listed = sums.lines().find_map(|line| {
            let (hash, name) = line.split_once("  ")?;
            (name == file.name).then_some(hash)
        });
        match listed {
            Some(hash) if hash == file.sha256 => {}
            Some(_) => bail!("{} does not match {SUMS_FILE}", file.name),
            None => bail!("{SUMS_FILE} does not list {}", file.name),
        }
    }
    Ok(BootFiles {
        origin: Origin::Cached {
            version,
            dir: dir.to_path_buf(),
        },
        files,
    })
}

/// Writes the package's files into `cache/<version>/` (whole or not at all:
/// written beside it, then renamed) and returns that directory.
fn store(cache: &Path, package: &Package) -> Result<PathBuf> {
    let name = dir_name(&package.version);
    let dir = cache.join(&name);
    let partial = cache.join(format!(".{name}.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    let mut sums = String::new();
    for file in &package.files {
        std::fs::write(partial.join(file.name), &file.bytes)?;
        let _ = writeln!(sums, "{}  {}", file.sha256, file.name);
    }
    std::fs::write(partial.join(SUMS_FILE), sums)?;
    std::fs::write(partial.join(VERSION_FILE), format!("{}\n", package.version))?;
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("replacing {}", dir.display()))?;
    }
    std::fs::rename(&partial, &dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// A Debian version as a directory name: an epoch's `:` (and anything else
/// a file name should not hold) becomes `_`.
fn dir_name(version: &str) -> String {
    version
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".+~-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What [`unpack_deb`] takes out of the package.
#[derive(Debug)]
struct Package {
    version: String,
    files: Vec<BootFile>,
}

/// Reads a raspi-firmware `.deb`: an `ar` archive of `debian-binary`,
/// `control.tar.*` (whose `control` names the package and version) and
/// `data.tar.*` (the installed tree, where the boot files are).
fn unpack_deb(deb: &[u8]) -> Result<Package> {
    let mut archive = ar::Archive::new(deb);
    let (mut format, mut control, mut data) = (None, None, None);
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.context("not a .deb (ar archive)")?;
        let name = String::from_utf8_lossy(entry.header().identifier())
            .trim_end_matches(['/', ' '])
            .to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes)?;
        if name == "debian-binary" {
            format = Some(bytes);
        } else if name.starts_with("control.tar") {
            control = Some((name, bytes));
        } else if name.starts_with("data.tar") {
            data = Some((name, bytes));
        }
    }
    let format = format.context("not a .deb: no debian-binary member")?;
    ensure!(
        format.starts_with(b"2."),
        "unknown .deb format {:?}",
        String::from_utf8_lossy(&format).trim()
    );
    let (control_name, control) = control.context("not a .deb: no control.tar member")?;
    let (data_name, data) = data.context("not a .deb: no data.tar member")?;

    let control_tar = decompress(&control_name, &control)?;
    let control = tar_file(&control_tar, "control")?
        .with_context(|| format!("{control_name} holds no control file"))?;
    let control = String::from_utf8_lossy(&control);
    let field = |key: &str| {
        control.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k == key).then(|| v.trim().to_string())
        })
    };
    let package = field("Package").context("the control file names no package")?;
    ensure!(package == PACKAGE, "this .deb is {package}, not {PACKAGE}");
    let version = field("Version").context("the control file gives no version")?;

    let data_tar = decompress(&data_name, &data)?;
    let mut files = Vec::new();
    for name in BOOT_FILES {
        let bytes = tar_file(&data_tar, &format!("{DIR_IN_PACKAGE}/{name}"))?
            .with_context(|| format!("{PACKAGE} {version} has no /{DIR_IN_PACKAGE}/{name}"))?;
        files.push(boot_file(name, bytes));
    }
    Ok(Package { version, files })
}

/// A `.deb` member's tar bytes. dpkg writes xz by default (Debian's
/// raspi-firmware uses it); gzip and no compression are also allowed.
fn decompress(member: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    match member
        .strip_prefix("data.tar")
        .or_else(|| member.strip_prefix("control.tar"))
    {
        Some(".xz") => lzma_rs::xz_decompress(&mut &bytes[..], &mut out)
            .map_err(|e| anyhow::anyhow!("{member}: {e:?}"))?,
        Some(".gz") => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut out)
                .with_context(|| format!("{member}: bad gzip"))?;
        }
        Some("") => out.extend_from_slice(bytes),
        _ => bail!(
            "the .deb's {member} is compressed in a way this tool does not read; unpack the \
             package with `dpkg-deb -x FILE.deb DIR` and pass --boot-firmware DIR/{DIR_IN_PACKAGE}"
        ),
    }
    Ok(out)
}

/// The regular file at `path` (with or without a leading `./`) in a tar.
fn tar_file(tar_bytes: &[u8], path: &str) -> Result<Option<Vec<u8>>> {
    let mut archive = tar::Archive::new(tar_bytes);
    for entry in archive.entries().context("reading a tar archive")? {
        let mut entry = entry.context("reading a tar archive")?;
        let entry_path = entry.path()?.to_string_lossy().into_owned();
        if entry_path.trim_start_matches("./") == path && entry.header().entry_type().is_file() {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            return Ok(Some(bytes));
        }
    }
    Ok(None)
}

/// A Debian archive as the system's apt sources name it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DebianArchive {
    uri: String,
    suite: String,
    signed_by: Option<String>,
}

/// The `sources.list` line that enables only the firmware components of the
/// system's Debian release: non-free-firmware (bookworm on), non-free (its
/// home before). apt warns and goes on for a component a release lacks.
fn sources_list(archive: &DebianArchive) -> String {
    let options = archive
        .signed_by
        .as_ref()
        .map(|key| format!("[signed-by={key}] "))
        .unwrap_or_default();
    format!(
        "deb {options}{} {} non-free-firmware non-free\n",
        archive.uri, archive.suite
    )
}

/// The first Debian release archive in apt source text, in either format:
/// one-line (`sources.list`, `*.list`) or deb822 (`*.sources`). A Debian
/// archive is a `deb` source whose URI path ends in `/debian` and which
/// carries `main`; its release is a suite without `-` (not `-updates`,
/// `-security`, `-backports`).
fn debian_archive(one_line: &[String], deb822: &[String]) -> Option<DebianArchive> {
    let mut candidates = Vec::new();
    for text in deb822 {
        candidates.extend(parse_deb822(text));
    }
    for text in one_line {
        candidates.extend(parse_one_line(text));
    }
    candidates.into_iter().find_map(|source| {
        let is_debian = source.types.iter().any(|t| t == "deb")
            && source.uri.trim_end_matches('/').ends_with("/debian")
            && source.components.iter().any(|c| c == "main");
        let suite = source
            .suites
            .iter()
            .find(|s| !s.contains('-') && !s.contains('/'))?;
        is_debian.then(|| DebianArchive {
            uri: source.uri.trim_end_matches('/').to_string(),
            suite: suite.clone(),
            signed_by: source.signed_by.filter(|key| key.starts_with('/')),
        })
    })
}

#[derive(Debug, Default)]
struct Source {
    types: Vec<String>,
    uri: String,
    suites: Vec<String>,
    components: Vec<String>,
    signed_by: Option<String>,
}

fn parse_one_line(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        let Some((kind, rest)) = line.split_once(char::is_whitespace) else {
            continue;
        };
        let mut rest = rest.trim_start();
        let mut signed_by = None;
        if let Some(options) = rest.strip_prefix('[') {
            let Some((options, after)) = options.split_once(']') else {
                continue;
            };
            signed_by = options
                .split_whitespace()
                .find_map(|o| o.strip_prefix("signed-by="))
                .map(str::to_string);
            rest = after.trim_start();
        }
        let mut words = rest.split_whitespace();
        let (Some(uri), Some(suite)) = (words.next(), words.next()) else {
            continue;
        };
        sources.push(Source {
            types: vec![kind.to_string()],
            uri: uri.to_string(),
            suites: vec![suite.to_string()],
            components: words.map(str::to_string).collect(),
            signed_by,
        });
    }
    sources
}

fn parse_deb822(text: &str) -> Vec<Source> {
    let mut sources = Vec::new();
    for stanza in text.split("\n\n") {
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in stanza.lines() {
            if line.starts_with('#') {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                if let Some((_, value)) = fields.last_mut() {
                    value.push('\n');
                    value.push_str(line.trim());
                }
            } else if let Some((key, value)) = line.split_once(':') {
                fields.push((key.trim().to_ascii_lowercase(), value.trim().to_string()));
            }
        }
        let get = |key: &str| {
            fields
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let words = |key: &str| -> Vec<String> {
            get(key)
                .map(|v| v.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default()
        };
        if get("enabled").is_some_and(|v| v.eq_ignore_ascii_case("no")) {
            continue;
        }
        for uri in words("uris") {
            sources.push(Source {
                types: words("types"),
                uri,
                suites: words("suites"),
                components: words("components"),
                signed_by: get("signed-by").map(str::to_string),
            });
        }
    }
    sources
}

/// The system's apt source files: (one-line texts, deb822 texts).
fn system_sources() -> (Vec<String>, Vec<String>) {
    let (mut one_line, mut deb822) = (Vec::new(), Vec::new());
    if let Ok(text) = std::fs::read_to_string("/etc/apt/sources.list") {
        one_line.push(text);
    }
    let mut parts: Vec<PathBuf> = std::fs::read_dir("/etc/apt/sources.list.d")
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    parts.sort();
    for path in parts {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        match path.extension().and_then(|e| e.to_str()) {
            Some("list") => one_line.push(text),
            Some("sources") => deb822.push(text),
            _ => {}
        }
    }
    (one_line, deb822)
}

/// The apt options that point every file apt writes (and the sources it
/// reads) into `work`.
fn apt_options(work: &Path) -> Vec<String> {
    let dir = |sub: &str| work.join(sub).display().to_string();
    vec![
        "-q".into(),
        "-o".into(),
        format!("Dir::Etc::SourceList={}", dir("sources.list")),
        "-o".into(),
        format!("Dir::Etc::SourceParts={}", dir("sources.list.d")),
        "-o".into(),
        format!("Dir::State::Lists={}", dir("lists")),
        "-o".into(),
        format!("Dir::Cache={}", dir("cache")),
    ]
}

/// Runs `apt-get update` and `apt-get download raspi-firmware` confined to
/// `work` (see the module docs) and returns the downloaded `.deb`.
fn fetch_with_apt(work: &Path) -> Result<PathBuf> {
    let give_dir = "pass --boot-firmware DIR, a directory with bootcode.bin, start.elf and \
                    fixup.dat (the boot/ folder of the raspberrypi/firmware repository, or the \
                    boot partition of a Raspberry Pi OS card)";
    if Command::new("apt-get").arg("--version").output().is_err() {
        bail!(
            "the Pi's boot files are needed and this machine has no apt-get to fetch Debian's \
             {PACKAGE} package: {give_dir}"
        );
    }
    let (one_line, deb822) = system_sources();
    let Some(archive) = debian_archive(&one_line, &deb822) else {
        bail!(
            "the Pi's boot files are needed and this machine's apt sources name no Debian \
             archive to fetch {PACKAGE} from: {give_dir}"
        );
    };
    for sub in ["sources.list.d", "lists/partial", "cache/archives/partial"] {
        std::fs::create_dir_all(work.join(sub))
            .with_context(|| format!("creating {}", work.join(sub).display()))?;
    }
    let download = work.join("download");
    let _ = std::fs::remove_dir_all(&download);
    std::fs::create_dir_all(&download)?;
    std::fs::write(work.join("sources.list"), sources_list(&archive))?;

    println!(
        "fetching the Pi's boot files: Debian {PACKAGE} from {} {} (non-free-firmware, for this \
         download only)",
        archive.uri, archive.suite
    );
    let options = apt_options(work);
    let steps: [&[&str]; 2] = [&["update"], &["download", PACKAGE]];
    for step in steps {
        let mut command = Command::new("apt-get");
        command.args(&options).args(step).current_dir(&download);
        let shown = format!(
            "(cd {} && apt-get {} {})",
            download.display(),
            options.join(" "),
            step.join(" ")
        );
        let out = command
            .output()
            .with_context(|| format!("running {shown}"))?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        // apt-get update exits 0 when an index cannot be fetched ("Err:"
        // with the reason on the next, indented line, then "W: Failed to
        // fetch"), so its messages decide too.
        let mut messages = Vec::new();
        let mut failed = !out.status.success();
        let mut after_err = false;
        for line in stdout.lines().chain(stderr.lines()) {
            let err = line.starts_with("Err:") || line.starts_with("E:");
            failed |= err;
            if err || line.starts_with("W:") || (after_err && line.starts_with(' ')) {
                messages.push(line.trim().to_string());
            }
            after_err = line.starts_with("Err:");
        }
        if failed {
            bail!(
                "fetching Debian's {PACKAGE} failed:\n  {}\nthe command was:\n  {shown}\n\
                 Try again when the archive can be reached, or {give_dir}",
                if messages.is_empty() {
                    stderr.trim().to_string()
                } else {
                    messages.join("\n  ")
                }
            );
        }
    }
    let mut debs: Vec<PathBuf> = std::fs::read_dir(&download)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    ensure!(
        debs.len() == 1,
        "apt-get download left {} .deb files in {}",
        debs.len(),
        download.display()
    );
    Ok(debs.remove(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            builder.append_data(&mut header, path, *bytes).unwrap();
        }
        builder.into_inner().unwrap()
    }

    fn xz(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        lzma_rs::xz_compress(&mut &bytes[..], &mut out).unwrap();
        out
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn ar(members: &[(&str, Vec<u8>)]) -> Vec<u8> {
        let mut builder = ar::Builder::new(Vec::new());
        for (name, bytes) in members {
            let header = ar::Header::new(name.as_bytes().to_vec(), bytes.len() as u64);
            builder.append(&header, &bytes[..]).unwrap();
        }
        builder.into_inner().unwrap()
    }

    const BOOTCODE: &[u8] = b"bootcode bytes";
    const START: &[u8] = b"start.elf bytes, a little longer";
    const FIXUP: &[u8] = b"fixup";

    fn control(package: &str) -> Vec<u8> {
        format!("Package: {package}\nVersion: 1:1.20220830+ds-1\nArchitecture: all\n").into_bytes()
    }

    /// A raspi-firmware .deb as dpkg-deb lays it out, with decoys beside the
    /// three files, its data member compressed by `compress` under `suffix`.
    fn raspi_deb(suffix: &str, compress: fn(&[u8]) -> Vec<u8>, omit: Option<&str>) -> Vec<u8> {
        let mut data: Vec<(&str, &[u8])> = vec![
            ("./usr/share/doc/raspi-firmware/copyright", b"licence"),
            ("./usr/lib/raspi-firmware/bootcode.bin", BOOTCODE),
            ("./usr/lib/raspi-firmware/start.elf", START),
            ("./usr/lib/raspi-firmware/start_x.elf", b"not this one"),
            ("./usr/lib/raspi-firmware/fixup.dat", FIXUP),
            ("./boot/firmware/start.elf", b"nor this one"),
        ];
        data.retain(|(path, _)| omit.is_none_or(|name| !path.ends_with(&format!("/{name}"))));
        ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            (
                "control.tar.xz",
                xz(&tar(&[("./control", &control("raspi-firmware"))])),
            ),
            (&format!("data.tar{suffix}"), compress(&tar(&data))),
        ])
    }

    #[test]
    fn the_three_files_and_the_version_come_out_of_an_xz_deb() {
        let package = unpack_deb(&raspi_deb(".xz", xz, None)).unwrap();
        assert_eq!(package.version, "1:1.20220830+ds-1");
        let names: Vec<_> = package.files.iter().map(|f| f.name).collect();
        assert_eq!(names, BOOT_FILES);
        assert_eq!(package.files[0].bytes, BOOTCODE);
        assert_eq!(package.files[1].bytes, START);
        assert_eq!(package.files[2].bytes, FIXUP);
        // As `printf fixup | sha256sum` gives it, and the FIPS 180-2 "abc" vector.
        assert_eq!(
            package.files[2].sha256,
            "ff83bd0d393b0320155673a1c776fd93fee78ad424eb921055d36175a979fe78"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn gzip_and_plain_data_members_are_read_too() {
        let plain: fn(&[u8]) -> Vec<u8> = |b| b.to_vec();
        for (suffix, compress) in [(".gz", gz as fn(&[u8]) -> Vec<u8>), ("", plain)] {
            let package = unpack_deb(&raspi_deb(suffix, compress, None)).unwrap();
            assert_eq!(package.files[1].bytes, START, "data.tar{suffix}");
        }
    }

    #[test]
    fn a_deb_that_lacks_a_file_or_is_another_package_is_refused() {
        let error = unpack_deb(&raspi_deb(".xz", xz, Some("fixup.dat"))).unwrap_err();
        assert!(
            format!("{error:#}").contains("no /usr/lib/raspi-firmware/fixup.dat"),
            "{error:#}"
        );

        let other = ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            (
                "control.tar.xz",
                xz(&tar(&[("./control", &control("firmware-brcm80211"))])),
            ),
            ("data.tar.xz", xz(&tar(&[]))),
        ]);
        let error = unpack_deb(&other).unwrap_err();
        assert!(
            format!("{error:#}").contains("firmware-brcm80211, not raspi-firmware"),
            "{error:#}"
        );

        let zst = ar(&[
            ("debian-binary", b"2.0\n".to_vec()),
            (
                "control.tar.xz",
                xz(&tar(&[("./control", &control("raspi-firmware"))])),
            ),
            ("data.tar.zst", b"(zstd)".to_vec()),
        ]);
        let error = unpack_deb(&zst).unwrap_err();
        assert!(format!("{error:#}").contains("dpkg-deb -x"), "{error:#}");

        let error = unpack_deb(b"!<arch>\n").unwrap_err();
        assert!(
            format!("{error:#}").contains("no debian-binary"),
            "{error:#}"
        );
        assert!(unpack_deb(b"not an archive").is_err());
    }

    const BOOKWORM_SOURCES: &str = "\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

    #[test]
    fn the_debian_release_is_found_in_deb822_sources() {
        let archive = debian_archive(&[], &[BOOKWORM_SOURCES.to_string()]).unwrap();
        assert_eq!(
            archive,
            DebianArchive {
                uri: "http://mirror.example/debian".into(),
                suite: "bookworm".into(),
                signed_by: Some("/usr/share/keyrings/debian-archive-keyring.gpg".into()),
            }
        );
        assert_eq!(
            sources_list(&archive),
            "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] \
             http://mirror.example/debian bookworm non-free-firmware non-free\n"
        );
    }

    #[test]
    fn the_debian_release_is_found_in_one_line_sources_and_others_are_passed_over() {
        let list = "\
# deb http://old.example/debian buster main
deb-src http://mirror.example/debian trixie main
deb http://mirror.example/debian trixie-updates main
deb [arch=amd64 signed-by=/etc/apt/keyrings/x.gpg] http://ftp.example/debian/ trixie main contrib
";
        let archive = debian_archive(&[list.to_string()], &[]).unwrap();
        assert_eq!(archive.uri, "http://ftp.example/debian");
        assert_eq!(archive.suite, "trixie");
        assert_eq!(
            archive.signed_by.as_deref(),
            Some("/etc/apt/keyrings/x.gpg")
        );
        assert_eq!(
            sources_list(&DebianArchive {
                signed_by: None,
                ..archive
            }),
            "deb http://ftp.example/debian trixie non-free-firmware non-free\n"
        );

        let not_debian = [
            "deb http://archive.example/ubuntu jammy main universe".to_string(),
            "deb https://deb.example/node_20.x nodistro main".to_string(),
        ];
        assert_eq!(debian_archive(&not_debian, &[]), None);
        let disabled = format!("Enabled: no\n{BOOKWORM_SOURCES}");
        let disabled = disabled.split("\n\n").next().unwrap().to_string();
        assert_eq!(debian_archive(&[], &[disabled]), None);
    }

    #[test]
    fn the_apt_options_keep_every_write_inside_the_work_directory() {
        let options = apt_options(Path::new("/w"));
        let settings: Vec<_> = options.iter().filter(|o| o.contains('=')).collect();
        assert_eq!(
            settings,
            [
                "Dir::Etc::SourceList=/w/sources.list",
                "Dir::Etc::SourceParts=/w/sources.list.d",
                "Dir::State::Lists=/w/lists",
                "Dir::Cache=/w/cache",
            ]
        );
    }

    fn write_boot_files(dir: &Path, contents: [&[u8]; 3]) {
        std::fs::create_dir_all(dir).unwrap();
        for (name, bytes) in BOOT_FILES.iter().zip(contents) {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }

    fn no_fetch(_: &Path) -> Result<PathBuf> {
        panic!("fetched although the files were at hand")
    }

    #[test]
    fn a_given_directory_wins_and_must_hold_all_three() {
        let root = tempfile::tempdir().unwrap();
        let (given, installed) = (root.path().join("given"), root.path().join("installed"));
        write_boot_files(&given, [b"g1", b"g2", b"g3"]);
        write_boot_files(&installed, [b"i1", b"i2", b"i3"]);
        let found = locate_in(
            Some(&given),
            &installed,
            &root.path().join("cache"),
            no_fetch,
        )
        .unwrap();
        assert_eq!(found.origin, Origin::Given(given.clone()));
        assert_eq!(found.files[1].bytes, b"g2");
        assert!(found
            .config_comment()
            .starts_with("# boot files: given with --boot-firmware\n"));

        std::fs::remove_file(given.join("fixup.dat")).unwrap();
        std::fs::remove_file(given.join("start.elf")).unwrap();
        let error = locate_in(
            Some(&given),
            &installed,
            &root.path().join("cache"),
            no_fetch,
        )
        .unwrap_err();
        assert!(
            error.to_string().ends_with("missing start.elf, fixup.dat"),
            "{error}"
        );
    }

    #[test]
    fn the_installed_package_comes_before_the_cache_and_the_network() {
        let root = tempfile::tempdir().unwrap();
        let installed = root.path().join("installed");
        write_boot_files(&installed, [b"i1", b"i2", b"i3"]);
        let found = locate_in(None, &installed, &root.path().join("cache"), no_fetch).unwrap();
        assert!(matches!(found.origin, Origin::Installed(_)));
        assert_eq!(found.files[0].bytes, b"i1");
    }

    #[test]
    fn a_miss_fetches_and_caches_then_a_hit_does_not_fetch() {
        let root = tempfile::tempdir().unwrap();
        let (installed, cache) = (root.path().join("none"), root.path().join("cache"));
        let deb = root.path().join("raspi-firmware.deb");
        std::fs::write(&deb, raspi_deb(".xz", xz, None)).unwrap();

        let mut fetched_into = None;
        let first = locate_in(None, &installed, &cache, |work| {
            fetched_into = Some(work.to_path_buf());
            Ok(deb.clone())
        })
        .unwrap();
        assert_eq!(fetched_into, Some(cache.join("apt")));
        let dir = cache.join("1_1.20220830+ds-1");
        assert_eq!(
            first.origin,
            Origin::Fetched {
                version: "1:1.20220830+ds-1".into(),
                dir: dir.clone()
            }
        );
        assert_eq!(std::fs::read(dir.join("start.elf")).unwrap(), START);
        let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
        assert_eq!(sums.lines().count(), 3);
        assert!(
            sums.contains(&format!("{}  fixup.dat\n", sha256_hex(FIXUP))),
            "{sums}"
        );

        let second = locate_in(None, &installed, &cache, no_fetch).unwrap();
        assert_eq!(
            second.origin,
            Origin::Cached {
                version: "1:1.20220830+ds-1".into(),
                dir: dir.clone()
            }
        );
        assert_eq!(second.config_comment(), first.config_comment());
        assert_eq!(
            second.config_comment().lines().next(),
            Some("# boot files: Debian raspi-firmware 1:1.20220830+ds-1")
        );
        assert!(second
            .config_comment()
            .contains(&format!("# sha256 {} bootcode.bin\n", sha256_hex(BOOTCODE))));
    }

    #[test]
    fn fetched_files_and_their_hashes_land_on_a_card_image() {
        let root = tempfile::tempdir().unwrap();
        let deb = root.path().join("raspi-firmware.deb");
        std::fs::write(&deb, raspi_deb(".xz", xz, None)).unwrap();
        let found = locate_in(
            None,
            &root.path().join("none"),
            &root.path().join("cache"),
            |_| Ok(deb.clone()),
        )
        .unwrap();
        let config = format!("{}arm_64bit=1\n", found.config_comment());
        let mut files = found.card_files();
        files.push(("config.txt", config.as_bytes()));
        let image = root.path().join("card.img");
        crate::card_image::write_image(&image, &files).unwrap();
        let card = crate::card_image::read_image(&image).unwrap();
        for (name, bytes) in &files {
            let on_card = card.files.iter().find(|f| f.name == *name).unwrap();
            assert!(on_card.bytes == *bytes, "{name}");
        }
    }

    #[test]
    fn a_damaged_cache_is_passed_over_and_fetched_again() {
        let root = tempfile::tempdir().unwrap();
        let (installed, cache) = (root.path().join("none"), root.path().join("cache"));
        let deb = root.path().join("raspi-firmware.deb");
        std::fs::write(&deb, raspi_deb(".xz", xz, None)).unwrap();
        locate_in(None, &installed, &cache, |_| Ok(deb.clone())).unwrap();
        let dir = cache.join("1_1.20220830+ds-1");
        std::fs::write(dir.join("start.elf"), b"truncated").unwrap();
        assert!(cached(&cache).unwrap().is_none());

        let mut fetched = false;
        let again = locate_in(None, &installed, &cache, |_| {
            fetched = true;
            Ok(deb.clone())
        })
        .unwrap();
        assert!(fetched);
        assert_eq!(again.files[1].bytes, START);
        assert_eq!(std::fs::read(dir.join("start.elf")).unwrap(), START);
    }

    #[test]
    fn an_interrupted_store_is_not_a_cache_hit() {
        let root = tempfile::tempdir().unwrap();
        let (installed, cache) = (root.path().join("none"), root.path().join("cache"));
        let deb = root.path().join("raspi-firmware.deb");
        std::fs::write(&deb, raspi_deb(".xz", xz, None)).unwrap();
        locate_in(None, &installed, &cache, |_| Ok(deb.clone())).unwrap();
        let dir = cache.join("1_1.20220830+ds-1");
        assert!(cached(&cache).unwrap().is_some());
        std::fs::rename(&dir, cache.join(".1_1.20220830+ds-1.partial")).unwrap();
        assert!(cached(&cache).unwrap().is_none());
    }

    #[test]
    fn a_failed_fetch_is_the_error() {
        let root = tempfile::tempdir().unwrap();
        let error = locate_in(
            None,
            &root.path().join("none"),
            &root.path().join("cache"),
            |_| bail!("no network"),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "no network");
    }

    /// The real thing: apt-get fetches raspi-firmware from this machine's
    /// Debian archive into a scratch cache. Needs the network; run with
    /// `cargo test -p xtask real_fetch -- --ignored --nocapture`.
    #[test]
    #[ignore = "fetches from the Debian archive"]
    fn real_fetch_from_debian() {
        let root = tempfile::tempdir().unwrap();
        let (installed, cache) = (root.path().join("none"), root.path().join("cache"));
        let fetched = locate_in(None, &installed, &cache, fetch_with_apt).unwrap();
        println!("{}", fetched.describe());
        print!("{}", fetched.config_comment());
        assert!(matches!(fetched.origin, Origin::Fetched { .. }));
        assert!(fetched.files.iter().all(|f| !f.bytes.is_empty()));
        // start.elf is a VideoCore ELF.
        assert_eq!(&fetched.files[1].bytes[..4], b"\x7fELF");
        let again = locate_in(None, &installed, &cache, no_fetch).unwrap();
        assert!(matches!(again.origin, Origin::Cached { .. }));
        // dpkg's own unpacking agrees, where dpkg-deb is here to ask.
        let deb = std::fs::read_dir(cache.join("apt/download"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let unpacked = root.path().join("dpkg");
        let status = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .status()
            .unwrap();
        assert!(status.success());
        for file in &fetched.files {
            let theirs = std::fs::read(unpacked.join(DIR_IN_PACKAGE).join(file.name)).unwrap();
            assert!(
                theirs == file.bytes,
                "{} differs from dpkg-deb's",
                file.name
            );
        }
    }
}
