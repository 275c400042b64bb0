//! Finding the system's PostgreSQL server binaries (`initdb`, `pg_ctl`,
//! `postgres`), in this order:
//!
//! 1. the directory `pg_config --bindir` prints;
//! 2. the versioned installation directories (`/usr/lib/postgresql/<v>/bin`
//!    on Debian and Ubuntu, `/usr/pgsql-<v>/bin` on RHEL), highest version
//!    first;
//! 3. the directories of `PATH` (a symlinked `initdb` counts from where it
//!    points, so that `pg_ctl` finds its `postgres` beside it).
//!
//! A directory counts only if it holds all three programs. When the private
//! data directory already exists, the binaries of the major version that
//! created it win, since no other version can open it.

use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The programs the private server needs, all from one directory.
pub const REQUIRED: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

/// A PostgreSQL major version: `15` is `(15, 0)`, `9.6` is `(9, 6)` (before
/// version 10 the major version had two parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgVersion {
    pub major: u32,
    pub minor: u32,
}

impl PgVersion {
    /// Parses `15`, `15.4`, `9.6`, `9.6.24`, `16beta1` (its major version).
    pub fn parse(raw: &str) -> Option<Self> {
        let mut parts = raw.trim().split('.');
        let major = leading_number(parts.next()?)?;
        if major >= 10 {
            return Some(Self { major, minor: 0 });
        }
        let minor = leading_number(parts.next()?)?;
        Some(Self { major, minor })
    }
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.major >= 10 { write!(f, "{}", self.major) } else { write!(f, "{}.{}", self.major, self.minor) }
    }
}

/// A directory holding the server binaries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binaries {
    pub bindir: PathBuf,
    /// The major version, when known.
    pub version: Option<PgVersion>,
}

impl Binaries {
    pub fn program(&self, name: &str) -> PathBuf {
        self.bindir.join(name)
    }

    /// Whether `pg_stat_statements` can be preloaded: its library and its
    /// extension control file are installed for these binaries.
    pub fn pg_stat_statements_available(&self) -> bool {
        let (pkglibdirs, sharedirs) = self.library_dirs();
        extension_installed(&pkglibdirs, &sharedirs, "pg_stat_statements")
    }

    /// Where the server's loadable libraries and shared files may be: what
    /// this installation's own `pg_config` says, then the usual layouts
    /// relative to the binaries.
    fn library_dirs(&self) -> (Vec<PathBuf>, Vec<PathBuf>) {
        let mut pkglib = Vec::new();
        let mut share = Vec::new();
        let pg_config = self.program("pg_config");
        if is_executable(&pg_config)
            && let Some(out) = run_for_output(Command::new(&pg_config).args(["--pkglibdir", "--sharedir"]))
        {
            let mut lines = out.lines();
            if let (Some(lib), Some(sh)) = (lines.next(), lines.next()) {
                pkglib.push(PathBuf::from(lib.trim()));
                share.push(PathBuf::from(sh.trim()));
            }
        }
        if let Some(prefix) = self.bindir.parent() {
            for lib in ["lib/postgresql", "lib", "lib64/pgsql", "lib/pgsql"] {
                pkglib.push(prefix.join(lib));
            }
            for sh in ["share/postgresql", "share", "share/pgsql"] {
                share.push(prefix.join(sh));
            }
        }
        if let Some(v) = self.version {
            share.push(PathBuf::from(format!("/usr/share/postgresql/{v}")));
        }
        (pkglib, share)
    }
}

/// Whether extension `name` is installed: its shared library in one of
/// `pkglibdirs` and its control file in `<sharedir>/extension`.
pub(crate) fn extension_installed(pkglibdirs: &[PathBuf], sharedirs: &[PathBuf], name: &str) -> bool {
    pkglibdirs.iter().any(|d| d.join(format!("{name}.so")).is_file())
        && sharedirs.iter().any(|d| d.join("extension").join(format!("{name}.control")).is_file())
}

/// Where to look for the binaries, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SearchPlaces {
    /// What `pg_config --bindir` printed, if it ran.
    pub pg_config_bindir: Option<PathBuf>,
    /// Directories with one sub-directory per version, and the prefix of
    /// those sub-directories' names: (`/usr/lib/postgresql`, ``) holds
    /// `15/bin`, (`/usr`, `pgsql-`) holds `pgsql-15/bin`.
    pub versioned: Vec<(PathBuf, String)>,
    /// The directories of `PATH`.
    pub path: Vec<PathBuf>,
}

impl SearchPlaces {
    /// This machine's places.
    pub fn system() -> Self {
        let pg_config_bindir = run_for_output(Command::new("pg_config").arg("--bindir"))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .map(PathBuf::from);
        // PATH, like PGUSER, is the process's own environment rather than
        // devx configuration, so it is read here and not in `config`.
        let path = std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect()).unwrap_or_default();
        Self {
            pg_config_bindir,
            versioned: vec![
                (PathBuf::from("/usr/lib/postgresql"), String::new()),
                (PathBuf::from("/usr"), "pgsql-".into()),
            ],
            path,
        }
    }

    /// The places, for an error message.
    pub fn describe(&self) -> String {
        let mut places = vec![match &self.pg_config_bindir {
            Some(dir) => format!("pg_config --bindir ({})", dir.display()),
            None => "pg_config --bindir (no pg_config)".to_string(),
        }];
        for (root, prefix) in &self.versioned {
            places.push(format!("{}/{prefix}*/bin", root.display()));
        }
        places.push("PATH".into());
        places.join(", ")
    }
}

/// Every directory holding all the server binaries, best first: `pg_config`'s,
/// then the versioned directories highest version first, then `PATH`'s.
/// Duplicates (the same directory reached twice) appear once.
pub(crate) fn candidates(places: &SearchPlaces) -> Vec<Binaries> {
    let mut found: Vec<Binaries> = Vec::new();
    let mut push = |bindir: PathBuf, version: Option<PgVersion>| {
        let canonical = bindir.canonicalize().unwrap_or(bindir);
        if !found.iter().any(|b| b.bindir == canonical) {
            let version = version.or_else(|| version_from_path(&canonical));
            found.push(Binaries { bindir: canonical, version });
        }
    };

    if let Some(dir) = &places.pg_config_bindir
        && complete(dir)
    {
        push(dir.clone(), None);
    }

    let mut versioned: Vec<(PgVersion, PathBuf)> = Vec::new();
    for (root, prefix) in &places.versioned {
        let Ok(entries) = std::fs::read_dir(root) else { continue };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(version) = name.to_str().and_then(|n| n.strip_prefix(prefix.as_str())).and_then(PgVersion::parse)
            else {
                continue;
            };
            let bindir = entry.path().join("bin");
            if complete(&bindir) {
                versioned.push((version, bindir));
            }
        }
    }
    versioned.sort_by_key(|c| std::cmp::Reverse(c.0));
    for (version, bindir) in versioned {
        push(bindir, Some(version));
    }

    for dir in &places.path {
        let initdb = dir.join("initdb");
        if !is_executable(&initdb) {
            continue;
        }
        // `/usr/local/bin/initdb -> /usr/lib/postgresql/15/bin/initdb`: the
        // real directory is the one that holds `postgres` too.
        let real = initdb.canonicalize().ok().and_then(|p| p.parent().map(Path::to_path_buf));
        for bindir in real.into_iter().chain([dir.clone()]) {
            if complete(&bindir) {
                push(bindir, None);
                break;
            }
        }
    }
    found
}

/// `/usr/lib/postgresql/15/bin` is version 15; `/usr/pgsql-16/bin` is 16.
fn version_from_path(bindir: &Path) -> Option<PgVersion> {
    if bindir.file_name()? != "bin" {
        return None;
    }
    let name = bindir.parent()?.file_name()?.to_str()?;
    let name = name.strip_prefix("pgsql-").unwrap_or(name);
    if name.chars().next()?.is_ascii_digit() { PgVersion::parse(name) } else { None }
}

/// Why no binaries can be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BinariesError {
    /// None anywhere; the places looked in.
    NotFound { looked: String },
    /// Some, but not of the version that created the data directory.
    WrongVersion { wanted: PgVersion, found: Vec<Binaries> },
}

/// The binaries to use: the first candidate, or when the data directory was
/// created by `wanted`, the first of that version.
pub(crate) fn choose(
    candidates: Vec<Binaries>,
    wanted: Option<PgVersion>,
    looked: impl FnOnce() -> String,
) -> Result<Binaries, BinariesError> {
    if candidates.is_empty() {
        return Err(BinariesError::NotFound { looked: looked() });
    }
    match wanted {
        None => Ok(candidates.into_iter().next().expect("not empty")),
        Some(wanted) => match candidates.iter().position(|b| b.version == Some(wanted)) {
            Some(i) => Ok(candidates.into_iter().nth(i).expect("found")),
            None => Err(BinariesError::WrongVersion { wanted, found: candidates }),
        },
    }
}

/// Finds this machine's binaries (blocking: may run `pg_config` and
/// `postgres -V`). `wanted`: the version of an existing data directory.
pub(crate) fn find(wanted: Option<PgVersion>) -> Result<Binaries, BinariesError> {
    let places = SearchPlaces::system();
    let mut found = candidates(&places);
    for b in &mut found {
        if b.version.is_none() {
            b.version = run_for_output(Command::new(b.program("postgres")).arg("-V"))
                .and_then(|out| out.rsplit(' ').next().and_then(PgVersion::parse));
        }
    }
    choose(found, wanted, || places.describe())
}

/// The binaries devx would use for a new private server on this machine, if
/// any (blocking).
pub fn find_binaries() -> Option<Binaries> {
    find(None).ok()
}

fn complete(bindir: &Path) -> bool {
    REQUIRED.iter().all(|p| is_executable(&bindir.join(p)))
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Runs a short informational command; its standard output if it succeeded.
fn run_for_output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bindir(dir: &Path, programs: &[&str]) -> PathBuf {
        std::fs::create_dir_all(dir).unwrap();
        for p in programs {
            let file = dir.join(p);
            std::fs::write(&file, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir.canonicalize().unwrap()
    }

    fn v(raw: &str) -> PgVersion {
        PgVersion::parse(raw).unwrap()
    }

    #[test]
    fn versions_parse_and_order_numerically() {
        assert_eq!(v("15"), PgVersion { major: 15, minor: 0 });
        assert_eq!(v("15.20"), PgVersion { major: 15, minor: 0 });
        assert_eq!(v("9.6.24"), PgVersion { major: 9, minor: 6 });
        assert_eq!(v("16beta1"), PgVersion { major: 16, minor: 0 });
        assert_eq!(PgVersion::parse("main"), None);
        assert_eq!(PgVersion::parse("9"), None);
        assert!(v("10") > v("9.6"));
        assert_eq!(v("9.6").to_string(), "9.6");
        assert_eq!(v("17.1").to_string(), "17");
    }

    #[test]
    fn discovery_order_is_pg_config_then_highest_version_then_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        let lib = root.join("usr/lib/postgresql");
        let v96 = fake_bindir(&lib.join("9.6/bin"), &REQUIRED);
        let v10 = fake_bindir(&lib.join("10/bin"), &REQUIRED);
        let v16 = fake_bindir(&lib.join("16/bin"), &REQUIRED);
        // Incomplete installations and unrelated directories do not count.
        fake_bindir(&lib.join("17/bin"), &["initdb", "pg_ctl"]);
        fake_bindir(&lib.join("common/bin"), &REQUIRED);
        let rhel = fake_bindir(&root.join("usr/pgsql-14/bin"), &REQUIRED);
        let custom = fake_bindir(&root.join("opt/pg/bin"), &REQUIRED);
        let on_path = fake_bindir(&root.join("home/me/pg/bin"), &REQUIRED);
        // A PATH directory with symlinks into a versioned directory is that directory.
        let local_bin = root.join("usr/local/bin");
        std::fs::create_dir_all(&local_bin).unwrap();
        std::os::unix::fs::symlink(v10.join("initdb"), local_bin.join("initdb")).unwrap();
        std::os::unix::fs::symlink(v10.join("pg_ctl"), local_bin.join("pg_ctl")).unwrap();

        let places = SearchPlaces {
            pg_config_bindir: Some(custom.clone()),
            versioned: vec![(lib.clone(), String::new()), (root.join("usr"), "pgsql-".into())],
            path: vec![root.join("nowhere"), local_bin.clone(), on_path.clone()],
        };
        let found = candidates(&places);
        let dirs: Vec<&Path> = found.iter().map(|b| b.bindir.as_path()).collect();
        assert_eq!(dirs, [&custom, &v16, &rhel, &v10, &v96, &on_path]);
        assert_eq!(found[1].version, Some(v("16")));
        assert_eq!(found[4].version, Some(v("9.6")));

        // pg_config pointing at a directory without the server (libpq-dev
        // alone) is skipped.
        let client_only = fake_bindir(&root.join("client/bin"), &["pg_config", "psql"]);
        let places = SearchPlaces { pg_config_bindir: Some(client_only), ..places };
        assert_eq!(candidates(&places)[0].bindir, v16);

        // Only PATH.
        let places = SearchPlaces { pg_config_bindir: None, versioned: vec![], path: vec![local_bin] };
        assert_eq!(candidates(&places), [Binaries { bindir: v10, version: Some(v("10")) }]);
    }

    #[test]
    fn an_existing_data_directory_wants_its_own_version() {
        let b = |dir: &str, ver: &str| Binaries { bindir: PathBuf::from(dir), version: PgVersion::parse(ver) };
        let found = vec![b("/a/16/bin", "16"), b("/a/15/bin", "15"), b("/x/bin", "")];
        let looked = || "here".to_string();
        assert_eq!(choose(found.clone(), None, looked).unwrap().bindir, PathBuf::from("/a/16/bin"));
        assert_eq!(choose(found.clone(), Some(v("15")), looked).unwrap().bindir, PathBuf::from("/a/15/bin"));
        assert_eq!(
            choose(found.clone(), Some(v("13")), looked),
            Err(BinariesError::WrongVersion { wanted: v("13"), found })
        );
        assert_eq!(choose(vec![], None, looked), Err(BinariesError::NotFound { looked: "here".into() }));
    }

    #[test]
    fn extension_needs_library_and_control_file() {
        let tmp = tempfile::tempdir().unwrap();
        let lib = tmp.path().join("lib");
        let share = tmp.path().join("share");
        std::fs::create_dir_all(&lib).unwrap();
        std::fs::create_dir_all(share.join("extension")).unwrap();
        let (libs, shares) = (vec![tmp.path().join("none"), lib.clone()], vec![share.clone()]);
        assert!(!extension_installed(&libs, &shares, "pg_stat_statements"));
        std::fs::write(lib.join("pg_stat_statements.so"), "").unwrap();
        assert!(!extension_installed(&libs, &shares, "pg_stat_statements"));
        std::fs::write(share.join("extension/pg_stat_statements.control"), "").unwrap();
        assert!(extension_installed(&libs, &shares, "pg_stat_statements"));
    }

    #[test]
    fn places_are_described_for_the_error_message() {
        let places = SearchPlaces {
            pg_config_bindir: None,
            versioned: vec![(PathBuf::from("/usr/lib/postgresql"), String::new())],
            path: vec![],
        };
        assert_eq!(places.describe(), "pg_config --bindir (no pg_config), /usr/lib/postgresql/*/bin, PATH");
    }
}
