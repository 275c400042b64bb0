//! The private server: its files, and starting, sharing and stopping it
//! (the protocol is described in the parent module). Everything here blocks;
//! the async side calls it through `spawn_blocking`, or from `Drop`.

use std::fs::{File, OpenOptions, TryLockError};
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User};

use super::EmbeddedError;
use super::binaries::{Binaries, PgVersion};

/// The port in the socket's name (`.s.PGSQL.5432`); nothing listens on TCP.
pub const PORT: u16 = 5432;
/// The superuser initdb creates.
pub const SUPERUSER: &str = "postgres";
/// How long to wait for another devx process that is starting or stopping
/// the server (initdb plus a start take seconds; pg_ctl gives up after 60).
const LOCK_WAIT: Duration = Duration::from_secs(150);
/// pg_ctl's own wait for start and stop, in seconds.
const PG_CTL_WAIT: &str = "60";
/// The longest unix socket path (`sun_path` holds 108 bytes with the NUL).
pub const MAX_SOCKET_PATH: usize = 107;

/// The files of the private server, all under `<data_dir>/postgres`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `<data_dir>/postgres`, mode 0700: also the socket directory.
    pub root: PathBuf,
    /// The cluster (PGDATA), made by initdb.
    pub data: PathBuf,
    pub socket: PathBuf,
    /// The server's log.
    pub log: PathBuf,
    /// Held exclusively while a process starts the server, or decides to stop it.
    lifecycle_lock: PathBuf,
    /// Held shared by every process that uses the server.
    users_lock: PathBuf,
    /// The identity of the postmaster devx started (pid and start time from
    /// `postmaster.pid`): devx stops only a server it started.
    marker: PathBuf,
}

impl Layout {
    pub fn new(data_dir: &Path) -> Result<Self, EmbeddedError> {
        let dir = data_dir.join("postgres");
        let root = std::path::absolute(&dir).map_err(|e| EmbeddedError::io("locate", &dir, e))?;
        let socket = root.join(format!(".s.PGSQL.{PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(EmbeddedError::SocketPathTooLong { path: socket });
        }
        Ok(Self {
            data: root.join("data"),
            socket,
            log: root.join("server.log"),
            lifecycle_lock: root.join("lifecycle.lock"),
            users_lock: root.join("users.lock"),
            marker: root.join("started-by-devx"),
            root,
        })
    }

    /// Whether initdb has made the cluster.
    pub fn initialized(&self) -> bool {
        self.data.join("PG_VERSION").is_file()
    }

    /// The major version that made the cluster.
    pub fn data_version(&self) -> Option<PgVersion> {
        std::fs::read_to_string(self.data.join("PG_VERSION")).ok().and_then(|s| PgVersion::parse(&s))
    }

    /// Whether a server accepts connections on the socket (a stale socket
    /// file left by a killed server refuses them).
    pub fn socket_answers(&self) -> bool {
        std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
    }

    /// The connection target for database `dbname` on the private server.
    pub fn target(&self, dbname: &str) -> tokio_postgres::Config {
        let mut cfg = tokio_postgres::Config::new();
        cfg.host_path(&self.root).port(PORT).user(SUPERUSER).dbname(dbname).application_name("devx");
        cfg
    }

    /// The running postmaster's identity: its pid and start time, from
    /// `postmaster.pid`.
    fn postmaster_identity(&self) -> Option<String> {
        postmaster_identity(&std::fs::read_to_string(self.data.join("postmaster.pid")).ok()?)
    }
}

/// Lines 1 (pid) and 3 (start time, epoch seconds) of `postmaster.pid`.
fn postmaster_identity(pid_file: &str) -> Option<String> {
    let lines: Vec<&str> = pid_file.lines().collect();
    match (lines.first(), lines.get(2)) {
        (Some(pid), Some(start)) if !pid.trim().is_empty() && !start.trim().is_empty() => {
            Some(format!("{}\n{}\n", pid.trim(), start.trim()))
        }
        _ => None,
    }
}

/// The unprivileged OS user that runs the server when devx runs as root
/// (PostgreSQL refuses to run as root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// Who runs the server: `None` for this process's own user. As root: the
/// owner of an existing cluster (so that it keeps working when the
/// `postgres` user appears later), else `postgres`, else `nobody`.
pub fn run_as(layout: &Layout) -> Result<Option<RunAs>, EmbeddedError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    if let Ok(meta) = std::fs::metadata(&layout.data)
        && meta.uid() != 0
    {
        let name =
            User::from_uid(Uid::from_raw(meta.uid())).ok().flatten().map_or_else(|| meta.uid().to_string(), |u| u.name);
        return Ok(Some(RunAs { name, uid: meta.uid(), gid: meta.gid() }));
    }
    ["postgres", "nobody"]
        .iter()
        .find_map(|name| User::from_name(name).ok().flatten())
        .map(|u| Some(RunAs { name: u.name, uid: u.uid.as_raw(), gid: u.gid.as_raw() }))
        .ok_or(EmbeddedError::NoServerUser)
}

/// The first directory above `path`, from `/` down, that `uid` (with group
/// `gid`) may not search; `stat` gives a directory's (mode, owner, group).
pub fn unsearchable_ancestor(
    path: &Path,
    uid: u32,
    gid: u32,
    stat: impl Fn(&Path) -> Option<(u32, u32, u32)>,
) -> Option<PathBuf> {
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors.reverse();
    ancestors.into_iter().find_map(|dir| {
        let (mode, owner, group) = stat(dir)?;
        let bit = if owner == uid {
            0o100
        } else if group == gid {
            0o010
        } else {
            0o001
        };
        (mode & bit == 0).then(|| dir.to_path_buf())
    })
}

/// `devx.conf`, included by the cluster's `postgresql.conf` and rewritten at
/// every start (so that a moved data directory gets its new socket path).
pub fn server_conf(socket_dir: &Path, preload_pg_stat_statements: bool) -> Result<String, EmbeddedError> {
    let dir = socket_dir
        .to_str()
        .filter(|d| !d.contains(['\n', '\r']))
        .ok_or_else(|| EmbeddedError::UnusablePath { path: socket_dir.to_path_buf() })?;
    // A list element in double quotes (so that commas and spaces survive),
    // inside a configuration string (quotes doubled, backslashes escaped).
    let element = format!("\"{}\"", dir.replace('"', "\"\""));
    let mut conf = String::from(
        "# Written by devx at every start of its private server: edits here are lost.\n\
         # Local connections only, on a unix socket in devx's own directory.\n\
         listen_addresses = ''\n",
    );
    conf.push_str(&format!("port = {PORT}\n"));
    conf.push_str(&format!("unix_socket_directories = {}\n", conf_string(&element)));
    if preload_pg_stat_statements {
        conf.push_str("shared_preload_libraries = 'pg_stat_statements'\n");
    }
    Ok(conf)
}

fn conf_string(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "''"))
}

const INCLUDE_LINE: &str = "include_if_exists = 'devx.conf'";

/// A devx process's use of the private server: while it exists the process
/// holds a shared lock on `users.lock`, so that no other process stops the
/// server under it.
#[derive(Debug)]
pub struct Lease {
    pub layout: Layout,
    binaries: Binaries,
    run_as: Option<RunAs>,
    users: File,
    /// Whether this process started the server (rather than finding it running).
    pub started: bool,
}

/// Makes sure the private server runs, starting it (and first creating the
/// cluster) if needed, and registers this process as one of its users.
pub fn acquire(layout: &Layout, binaries: &Binaries, run_as: Option<RunAs>) -> Result<Lease, EmbeddedError> {
    prepare_root(layout, run_as.as_ref())?;
    let lifecycle = lock_exclusive(&layout.lifecycle_lock)?;
    let users = open_lock(&layout.users_lock)?;
    // Only a process holding the lifecycle lock (we do) takes this one
    // exclusively, so this does not wait.
    users.lock_shared().map_err(|e| EmbeddedError::io("lock", &layout.users_lock, e))?;

    let started = if layout.socket_answers() {
        tracing::debug!(root = %layout.root.display(), "the private PostgreSQL server is already running");
        false
    } else {
        if !layout.initialized() {
            initdb(layout, binaries, run_as.as_ref())?;
        }
        write_config(layout, binaries, run_as.as_ref())?;
        start(layout, binaries, run_as.as_ref())?;
        if let Some(identity) = layout.postmaster_identity()
            && let Err(e) = std::fs::write(&layout.marker, identity)
        {
            tracing::warn!(error = %e, path = %layout.marker.display(), "cannot record the server devx started; it will be left running at exit");
        }
        true
    };
    drop(lifecycle);
    Ok(Lease { layout: layout.clone(), binaries: binaries.clone(), run_as, users, started })
}

impl Lease {
    /// Stops using the server, and stops the server if no other devx process
    /// uses it and devx started it.
    pub fn release(self) {
        let Lease { layout, binaries, run_as, users, started: _ } = self;
        let lifecycle = match lock_exclusive(&layout.lifecycle_lock) {
            Ok(lock) => lock,
            Err(e) => {
                tracing::warn!(error = %e, "leaving the private PostgreSQL server running");
                return;
            }
        };
        // Closing the file drops this process's shared lock.
        drop(users);
        // Nobody else uses the server if this process can lock `users.lock`
        // exclusively; nobody can start using it meanwhile, since that takes
        // the lifecycle lock first.
        let alone = open_lock(&layout.users_lock).map_err(|e| e.to_string()).and_then(|file| match file.try_lock() {
            Ok(()) => Ok(file),
            Err(TryLockError::WouldBlock) => Err("another devx process uses it".to_string()),
            Err(TryLockError::Error(e)) => Err(format!("cannot lock {}: {e}", layout.users_lock.display())),
        });
        let _alone = match alone {
            Ok(file) => file,
            Err(why) => {
                tracing::info!(root = %layout.root.display(), "leaving the private PostgreSQL server running: {why}");
                return;
            }
        };
        if !layout.socket_answers() {
            return;
        }
        let ours = std::fs::read_to_string(&layout.marker).ok();
        if ours.is_none() || ours != layout.postmaster_identity() {
            tracing::info!(root = %layout.root.display(), "leaving the PostgreSQL server running: devx did not start it");
            return;
        }
        match stop(&layout, &binaries, run_as.as_ref()) {
            Ok(()) => {
                let _ = std::fs::remove_file(&layout.marker);
                tracing::info!(root = %layout.root.display(), "stopped the private PostgreSQL server");
            }
            Err(e) => tracing::warn!(error = %e, "could not stop the private PostgreSQL server"),
        }
        drop(lifecycle);
    }
}

fn prepare_root(layout: &Layout, run_as: Option<&RunAs>) -> Result<(), EmbeddedError> {
    let root = &layout.root;
    std::fs::create_dir_all(root).map_err(|e| EmbeddedError::io("create", root, e))?;
    if let Some(user) = run_as {
        let stat = |dir: &Path| std::fs::metadata(dir).ok().map(|m| (m.mode(), m.uid(), m.gid()));
        if let Some(blocker) = unsearchable_ancestor(root, user.uid, user.gid, stat) {
            return Err(EmbeddedError::Unreachable { user: user.name.clone(), root: root.clone(), blocker });
        }
        std::os::unix::fs::chown(root, Some(user.uid), Some(user.gid))
            .map_err(|e| EmbeddedError::io(format!("hand over to user {}", user.name), root, e))?;
    }
    let meta = std::fs::metadata(root).map_err(|e| EmbeddedError::io("inspect", root, e))?;
    if meta.permissions().mode() & 0o777 != 0o700 {
        std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| EmbeddedError::io("restrict the permissions of", root, e))?;
    }
    Ok(())
}

fn open_lock(path: &Path) -> Result<File, EmbeddedError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| EmbeddedError::io("open", path, e))
}

/// The lifecycle lock, waiting (polling) for another process that holds it.
fn lock_exclusive(path: &Path) -> Result<File, EmbeddedError> {
    let file = open_lock(path)?;
    let begun = Instant::now();
    let mut told = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(EmbeddedError::io("lock", path, e)),
        }
        let waited = begun.elapsed();
        if waited > LOCK_WAIT {
            return Err(EmbeddedError::LockTimeout { path: path.to_path_buf(), waited });
        }
        if !told && waited > Duration::from_secs(1) {
            tracing::info!(
                "waiting for another devx process that is starting or stopping the private PostgreSQL server"
            );
            told = true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A command for one of the server programs: run as `run_as` when devx is
/// root, from the server's own directory, without the `PG*` variables that
/// would point it elsewhere.
#[allow(
    unsafe_code,
    reason = "pre_exec is the only way to drop the supplementary groups as well as the uid and gid: std's \
              CommandExt::groups is unstable, and PostgreSQL refuses to run as root"
)]
fn server_command(program: PathBuf, layout: &Layout, run_as: Option<&RunAs>) -> Command {
    let mut cmd = Command::new(program);
    cmd.current_dir(&layout.root).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(|n| n.starts_with("PG")) {
            cmd.env_remove(name);
        }
    }
    if let Some(user) = run_as {
        let (uid, gid) = (Uid::from_raw(user.uid), Gid::from_raw(user.gid));
        // SAFETY: between fork and exec the closure only makes the
        // async-signal-safe setgroups/setgid/setuid system calls.
        unsafe {
            cmd.pre_exec(move || {
                nix::unistd::setgroups(&[gid]).map_err(io::Error::from)?;
                nix::unistd::setgid(gid).map_err(io::Error::from)?;
                nix::unistd::setuid(uid).map_err(io::Error::from)?;
                Ok(())
            });
        }
        cmd.env("HOME", &layout.root).env("USER", &user.name).env("LOGNAME", &user.name);
    }
    cmd
}

/// Runs a server program to completion; its output if it failed.
fn run(mut cmd: Command, what: &str) -> Result<(), EmbeddedError> {
    let out = cmd.output().map_err(|e| EmbeddedError::Command {
        what: what.to_string(),
        status: format!("could not run {}: {e}", cmd.get_program().to_string_lossy()),
        output: String::new(),
    })?;
    if out.status.success() {
        return Ok(());
    }
    let mut output = String::from_utf8_lossy(&out.stderr).into_owned();
    output.push_str(&String::from_utf8_lossy(&out.stdout));
    Err(EmbeddedError::Command { what: what.to_string(), status: out.status.to_string(), output: tail(&output, 20) })
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn initdb(layout: &Layout, binaries: &Binaries, run_as: Option<&RunAs>) -> Result<(), EmbeddedError> {
    tracing::info!(data = %layout.data.display(), bindir = %binaries.bindir.display(), "creating the private PostgreSQL cluster");
    let mut cmd = server_command(binaries.program("initdb"), layout, run_as);
    cmd.arg("-D").arg(&layout.data).args(["-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--locale=C"]);
    run(cmd, "initdb (creating the private PostgreSQL cluster)")
}

fn write_config(layout: &Layout, binaries: &Binaries, run_as: Option<&RunAs>) -> Result<(), EmbeddedError> {
    let preload = binaries.pg_stat_statements_available();
    let conf = layout.data.join("devx.conf");
    std::fs::write(&conf, server_conf(&layout.root, preload)?).map_err(|e| EmbeddedError::io("write", &conf, e))?;
    if let Some(user) = run_as {
        std::os::unix::fs::chown(&conf, Some(user.uid), Some(user.gid))
            .map_err(|e| EmbeddedError::io("hand over", &conf, e))?;
    }
    let main = layout.data.join("postgresql.conf");
    let text = std::fs::read_to_string(&main).map_err(|e| EmbeddedError::io("read", &main, e))?;
    if !text.lines().any(|l| l.trim() == INCLUDE_LINE) {
        let mut file = OpenOptions::new().append(true).open(&main).map_err(|e| EmbeddedError::io("open", &main, e))?;
        io::Write::write_all(
            &mut file,
            format!("\n# devx's settings (rewritten at every start)\n{INCLUDE_LINE}\n").as_bytes(),
        )
        .map_err(|e| EmbeddedError::io("write", &main, e))?;
    }
    Ok(())
}

fn start(layout: &Layout, binaries: &Binaries, run_as: Option<&RunAs>) -> Result<(), EmbeddedError> {
    let mut cmd = server_command(binaries.program("pg_ctl"), layout, run_as);
    cmd.arg("start").arg("-D").arg(&layout.data).arg("-l").arg(&layout.log).args(["-w", "-t", PG_CTL_WAIT, "-s"]);
    let begun = Instant::now();
    match run(cmd, "pg_ctl start (starting the private PostgreSQL server)") {
        Ok(()) => {
            tracing::info!(
                root = %layout.root.display(),
                version = binaries.version.map(|v| v.to_string()).unwrap_or_default(),
                user = run_as.map(|u| u.name.as_str()).unwrap_or_default(),
                elapsed_ms = begun.elapsed().as_millis() as u64,
                "started the private PostgreSQL server"
            );
            Ok(())
        }
        Err(EmbeddedError::Command { what, status, mut output }) => {
            let log = std::fs::read_to_string(&layout.log).unwrap_or_default();
            if !log.is_empty() {
                output = format!("{output}\nlast lines of {}:\n{}", layout.log.display(), tail(&log, 15));
            }
            Err(EmbeddedError::Command { what, status, output })
        }
        Err(e) => Err(e),
    }
}

fn stop(layout: &Layout, binaries: &Binaries, run_as: Option<&RunAs>) -> Result<(), EmbeddedError> {
    let postmaster = std::fs::read_to_string(layout.data.join("postmaster.pid"))
        .ok()
        .and_then(|f| f.lines().next().and_then(|pid| pid.trim().parse::<u32>().ok()));
    let mut cmd = server_command(binaries.program("pg_ctl"), layout, run_as);
    cmd.arg("stop").arg("-D").arg(&layout.data).args(["-m", "fast", "-w", "-t", PG_CTL_WAIT, "-s"]);
    run(cmd, "pg_ctl stop (stopping the private PostgreSQL server)")?;
    // pg_ctl returns once postmaster.pid is gone, a moment before the
    // postmaster has exited; "stopped" should mean the process is gone, so
    // that a caller may start the cluster again or remove its directory.
    if let Some(pid) = postmaster {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while process_running(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    Ok(())
}

/// Whether `pid` is a live process (a zombie waiting to be reaped counts as gone).
fn process_running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_lives_in_data_dir_postgres() {
        let layout = Layout::new(Path::new("/srv/devx")).unwrap();
        assert_eq!(layout.root, Path::new("/srv/devx/postgres"));
        assert_eq!(layout.data, Path::new("/srv/devx/postgres/data"));
        assert_eq!(layout.socket, Path::new("/srv/devx/postgres/.s.PGSQL.5432"));
        let target = layout.target("devx");
        assert_eq!(target.get_hosts(), [tokio_postgres::config::Host::Unix("/srv/devx/postgres".into())]);
        assert_eq!(target.get_ports(), [5432]);
        assert_eq!(target.get_user(), Some("postgres"));
        assert_eq!(target.get_dbname(), Some("devx"));
        // A relative data directory is made absolute.
        assert!(Layout::new(Path::new(".devx")).unwrap().root.is_absolute());
    }

    #[test]
    fn a_socket_path_too_long_is_refused_with_advice() {
        let long = PathBuf::from("/").join("d".repeat(100));
        let err = Layout::new(&long).unwrap_err();
        assert!(matches!(err, EmbeddedError::SocketPathTooLong { .. }));
        assert!(err.to_string().contains("DEVX_DATA_DIR"), "{err}");
    }

    #[test]
    fn config_listens_only_on_the_private_socket() {
        let conf = server_conf(Path::new("/work/.devx/postgres"), true).unwrap();
        assert!(conf.contains("listen_addresses = ''\n"), "{conf}");
        assert!(conf.contains("unix_socket_directories = '\"/work/.devx/postgres\"'\n"), "{conf}");
        assert!(conf.contains("shared_preload_libraries = 'pg_stat_statements'\n"), "{conf}");
        let conf = server_conf(Path::new("/o'dd, \"dir\"\\x"), false).unwrap();
        assert!(conf.contains(r#"unix_socket_directories = '"/o''dd, ""dir""\\x"'"#), "{conf}");
        assert!(!conf.contains("shared_preload_libraries"));
        assert!(server_conf(Path::new("/a\nb"), false).is_err());
    }

    #[test]
    fn postmaster_identity_is_pid_and_start_time() {
        let pid_file = "4242\n/srv/devx/postgres/data\n1733000000\n5432\n/srv/devx/postgres\n\n  1234\nready   \n";
        assert_eq!(postmaster_identity(pid_file).as_deref(), Some("4242\n1733000000\n"));
        assert_eq!(postmaster_identity("4242\n"), None);
        assert_eq!(postmaster_identity(""), None);
    }

    #[test]
    fn the_first_unsearchable_ancestor_is_reported() {
        // /root is 0700 root:root; /root/x is 0755 postgres:postgres.
        let stat = |dir: &Path| -> Option<(u32, u32, u32)> {
            match dir.to_str()? {
                "/" => Some((0o40755, 0, 0)),
                "/root" => Some((0o40700, 0, 0)),
                "/root/x" => Some((0o40755, 101, 104)),
                "/srv" => Some((0o40750, 0, 104)),
                "/tmp" => Some((0o41777, 0, 0)),
                _ => None,
            }
        };
        let (uid, gid) = (101, 104);
        assert_eq!(unsearchable_ancestor(Path::new("/root/x/postgres"), uid, gid, stat), Some("/root".into()));
        assert_eq!(unsearchable_ancestor(Path::new("/srv/postgres"), uid, gid, stat), None);
        assert_eq!(unsearchable_ancestor(Path::new("/srv/postgres"), 65534, 65534, stat), Some("/srv".into()));
        assert_eq!(unsearchable_ancestor(Path::new("/tmp/t/postgres"), 65534, 65534, stat), None);
    }
}
