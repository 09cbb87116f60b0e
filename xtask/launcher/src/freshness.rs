//! Is the optimized xtask binary up to date, without asking cargo?
//!
//! Asking cargo (`cargo build -p xtask`) costs ~90 ms even
//! when nothing changed: it checks the fingerprint of each of xtask's ~200
//! dependencies. After each build this module writes a stamp: the size and
//! modification time of every input inside the checkout that cargo's own
//! dep-info lists for the binary (sources, `include_bytes!` files), the
//! manifests of those packages, `Cargo.lock`, the cargo and toolchain config,
//! the binary itself, and the build-relevant environment. The binary is fresh
//! only when all of these are exactly as stamped; anything else, including a
//! missing or unreadable stamp, means "ask cargo". Registry sources are left
//! out: they are immutable, and a change of version shows in `Cargo.lock`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

const STAMP_VERSION: &str = "xtask-launcher stamp 1";

/// Environment that changes how cargo builds (a change means rebuild).
const ENV_EXACT: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "RUSTC",
    "RUSTC_WRAPPER",
    "RUSTUP_TOOLCHAIN",
    "CARGO_BUILD_TARGET",
];
const ENV_PREFIX: &str = "CARGO_PROFILE_DEV_";

/// Where things are.
#[derive(Clone, Debug)]
pub struct Paths {
    pub root: PathBuf,
    pub target: PathBuf,
    pub binary: PathBuf,
    pub dep_info: PathBuf,
    pub stamp: PathBuf,
}

impl Paths {
    /// `profile_dir`: the profile's directory under `target` (`debug` for dev).
    pub fn new(root: &Path, target: &Path, profile_dir: &str) -> Paths {
        let dir = target.join(profile_dir);
        Paths {
            root: root.to_path_buf(),
            target: target.to_path_buf(),
            binary: dir.join(format!("xtask{}", std::env::consts::EXE_SUFFIX)),
            dep_info: dir.join("xtask.d"),
            stamp: dir.join("xtask-launcher.stamp"),
        }
    }
}

/// The build-relevant environment of this process, sorted.
pub fn build_env() -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = std::env::vars()
        .filter(|(k, _)| ENV_EXACT.contains(&k.as_str()) || k.starts_with(ENV_PREFIX))
        .collect();
    env.sort();
    env
}

/// Whether the binary is exactly as stamped (with this process's environment).
pub fn is_fresh(paths: &Paths) -> bool {
    is_fresh_with(paths, &build_env())
}

/// Writes the stamp after a build that started at `build_start`.
pub fn write_stamp(paths: &Paths, build_start: SystemTime) -> io::Result<()> {
    write_stamp_with(paths, build_start, &build_env())
}

/// Size and modification time (ns since 1970) of a file; `None` if it does not exist.
fn state(path: &Path) -> io::Result<Option<(u64, u128)>> {
    match fs::metadata(path) {
        Ok(m) => {
            let mtime = m
                .modified()?
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            Ok(Some((m.len(), mtime)))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The paths a Makefile-style dep-info line lists after `target:` (spaces
/// in names are escaped as `\ `).
fn dep_info_paths(text: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for line in text.lines() {
        // The first `: ` that is not escaped ends the target.
        let Some(colon) = find_rule_colon(line) else {
            continue;
        };
        let mut word = String::new();
        let mut chars = line[colon + 1..].chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&' ') => {
                    word.push(' ');
                    chars.next();
                }
                ' ' | '\t' => {
                    if !word.is_empty() {
                        out.push(PathBuf::from(std::mem::take(&mut word)));
                    }
                }
                _ => word.push(c),
            }
        }
        if !word.is_empty() {
            out.push(PathBuf::from(word));
        }
    }
    out
}

fn find_rule_colon(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    (0..bytes.len()).find(|&i| {
        bytes[i] == b':'
            && (i + 1 == bytes.len() || bytes[i + 1] == b' ')
            && (i == 0 || bytes[i - 1] != b'\\')
    })
}

/// Every file whose change must rebuild the binary, sorted, without duplicates.
fn inputs(paths: &Paths) -> io::Result<Vec<PathBuf>> {
    let text = fs::read_to_string(&paths.dep_info)?;
    let mut files = Vec::new();
    for path in dep_info_paths(&text) {
        let path = if path.is_absolute() {
            path
        } else {
            paths.root.join(path)
        };
        if !path.starts_with(&paths.root) || path.starts_with(&paths.target) {
            continue;
        }
        // The manifest of the package the file belongs to (features, deps).
        if let Some(manifest) = path
            .ancestors()
            .skip(1)
            .take_while(|dir| dir.starts_with(&paths.root))
            .map(|dir| dir.join("Cargo.toml"))
            .find(|m| m.is_file())
        {
            files.push(manifest);
        }
        files.push(path);
    }
    for fixed in [
        "Cargo.toml",
        "Cargo.lock",
        ".cargo/config.toml",
        ".cargo/config",
        "rust-toolchain.toml",
        "rust-toolchain",
    ] {
        files.push(paths.root.join(fixed));
    }
    files.sort();
    files.dedup();
    Ok(files)
}

fn stamp_text(env: &[(String, String)], files: &[(PathBuf, Option<(u64, u128)>)]) -> String {
    let mut text = format!("{STAMP_VERSION}\n");
    for (k, v) in env {
        text.push_str(&format!("env {k}={v:?}\n"));
    }
    for (path, st) in files {
        match st {
            Some((len, mtime)) => {
                text.push_str(&format!("file {len} {mtime} {}\n", path.display()))
            }
            None => text.push_str(&format!("absent {}\n", path.display())),
        }
    }
    text
}

/// The stamp as it would be now, for the binary and its inputs.
fn current(
    paths: &Paths,
    env: &[(String, String)],
) -> io::Result<(String, Vec<(PathBuf, Option<(u64, u128)>)>)> {
    let mut files = vec![(paths.binary.clone(), state(&paths.binary)?)];
    for input in inputs(paths)? {
        let st = state(&input)?;
        files.push((input, st));
    }
    Ok((stamp_text(env, &files), files))
}

pub fn is_fresh_with(paths: &Paths, env: &[(String, String)]) -> bool {
    let Ok(stamp) = fs::read_to_string(&paths.stamp) else {
        return false;
    };
    match current(paths, env) {
        // No binary: never fresh, whatever the stamp says.
        Ok((now, files)) => files[0].1.is_some() && now == stamp,
        Err(_) => false,
    }
}

pub fn write_stamp_with(
    paths: &Paths,
    build_start: SystemTime,
    env: &[(String, String)],
) -> io::Result<()> {
    // Whatever happens below, an old stamp must not survive a build.
    match fs::remove_file(&paths.stamp) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    let (text, files) = current(paths, env)?;
    if files[0].1.is_none() {
        return Ok(());
    }
    let started = build_start
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    // A file changed after the build started may or may not be in the
    // binary: no stamp, so the next run asks cargo again.
    let changed_during_build = files[1..]
        .iter()
        .any(|(_, st)| st.is_some_and(|(_, mtime)| mtime >= started));
    if changed_during_build {
        return Ok(());
    }
    let partial = paths.stamp.with_extension("stamp.new");
    fs::write(&partial, text)?;
    fs::rename(&partial, &paths.stamp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// A fake checkout and target directory, removed on drop.
    struct Fixture {
        dir: PathBuf,
        paths: Paths,
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn past() -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn write_at(path: &Path, text: &str, mtime: SystemTime) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(mtime)
            .unwrap();
    }

    fn fixture() -> Fixture {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "xtask-launcher-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let root = dir.join("check out");
        let target = root.join("target");
        let paths = Paths::new(&root, &target, "debug");
        for (file, text) in [
            ("Cargo.toml", "[workspace]"),
            ("Cargo.lock", "lock"),
            ("xtask/Cargo.toml", "[package]"),
            ("xtask/src/main.rs", "fn main() {}"),
            ("xtask/src/sim.rs", "// sim"),
            ("crates/trace/Cargo.toml", "[package]"),
            ("crates/trace/src/lib.rs", "// trace"),
        ] {
            write_at(&root.join(file), text, past());
        }
        let deps = [
            "xtask/src/main.rs",
            "xtask/src/sim.rs",
            "crates/trace/src/lib.rs",
        ]
        .map(|f| root.join(f).display().to_string().replace(' ', "\\ "))
        .join(" ");
        let registry = "/home/u/.cargo/registry/src/clap-4/src/lib.rs";
        write_at(
            &paths.dep_info,
            &format!(
                "{}: {deps} {registry}\n",
                paths.binary.display().to_string().replace(' ', "\\ ")
            ),
            past(),
        );
        write_at(&paths.binary, "ELF", past() + Duration::from_secs(10));
        Fixture { dir, paths }
    }

    fn stamped() -> Fixture {
        let f = fixture();
        assert!(!is_fresh_with(&f.paths, &[]), "no stamp yet");
        write_stamp_with(&f.paths, SystemTime::now(), &[]).unwrap();
        assert!(is_fresh_with(&f.paths, &[]), "just stamped");
        f
    }

    #[test]
    fn dep_info_with_spaces() {
        let paths = dep_info_paths("/t/x\\ y/bin: /a/b\\ c.rs /d.rs\n\n/t/other: /e.rs");
        assert_eq!(
            paths,
            ["/a/b c.rs", "/d.rs", "/e.rs"].map(PathBuf::from).to_vec()
        );
    }

    #[test]
    fn inputs_are_the_checkout_files_and_their_manifests() {
        let f = fixture();
        let root = &f.paths.root;
        let got = inputs(&f.paths).unwrap();
        for want in [
            "Cargo.lock",
            "Cargo.toml",
            "xtask/Cargo.toml",
            "xtask/src/sim.rs",
            "crates/trace/Cargo.toml",
            "crates/trace/src/lib.rs",
            "rust-toolchain.toml",
        ] {
            assert!(got.contains(&root.join(want)), "{want} in {got:?}");
        }
        assert!(!got.iter().any(|p| p.starts_with("/home")), "{got:?}");
    }

    #[test]
    fn an_edited_source_is_stale() {
        let f = stamped();
        write_at(
            &f.paths.root.join("xtask/src/sim.rs"),
            "// sim, edited",
            past(),
        );
        assert!(!is_fresh_with(&f.paths, &[]));
    }

    #[test]
    fn a_touched_source_is_stale() {
        let f = stamped();
        write_at(
            &f.paths.root.join("crates/trace/src/lib.rs"),
            "// trace",
            past() + Duration::from_secs(1),
        );
        assert!(!is_fresh_with(&f.paths, &[]));
    }

    #[test]
    fn manifests_lock_and_config_count() {
        for file in [
            "Cargo.lock",
            "crates/trace/Cargo.toml",
            ".cargo/config.toml",
            "rust-toolchain.toml",
        ] {
            let f = stamped();
            write_at(&f.paths.root.join(file), "changed", past());
            assert!(!is_fresh_with(&f.paths, &[]), "{file}");
        }
    }

    #[test]
    fn a_deleted_source_or_binary_is_stale() {
        let f = stamped();
        fs::remove_file(f.paths.root.join("xtask/src/sim.rs")).unwrap();
        assert!(!is_fresh_with(&f.paths, &[]));
        let f = stamped();
        fs::remove_file(&f.paths.binary).unwrap();
        assert!(!is_fresh_with(&f.paths, &[]));
    }

    #[test]
    fn a_rebuilt_binary_is_stale_until_stamped() {
        let f = stamped();
        write_at(&f.paths.binary, "ELF2", past() + Duration::from_secs(20));
        assert!(!is_fresh_with(&f.paths, &[]));
    }

    #[test]
    fn the_build_environment_counts() {
        let f = stamped();
        let flags = [("RUSTFLAGS".to_string(), "-Ctarget-cpu=native".to_string())];
        assert!(!is_fresh_with(&f.paths, &flags));
    }

    #[test]
    fn an_edit_during_the_build_leaves_no_stamp() {
        let f = stamped();
        // The build started before the edit: the binary may predate it.
        let start = SystemTime::now();
        write_at(
            &f.paths.root.join("xtask/src/main.rs"),
            "fn main() { edited() }",
            start + Duration::from_secs(1),
        );
        write_stamp_with(&f.paths, start, &[]).unwrap();
        assert!(!f.paths.stamp.exists());
        assert!(!is_fresh_with(&f.paths, &[]));
    }

    #[test]
    fn no_dep_info_means_no_stamp() {
        let f = stamped();
        fs::remove_file(&f.paths.dep_info).unwrap();
        assert!(write_stamp_with(&f.paths, SystemTime::now(), &[]).is_err());
        assert!(!is_fresh_with(&f.paths, &[]));
    }
}
