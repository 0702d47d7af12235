// Test infrastructure: a setup step that fails should stop the test loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

//! A real PostgreSQL server for tests (Debian `postgresql`, installed by
//! `.ci/install-postgresql.sh`): its own data directory (`initdb`), listening only on
//! 127.0.0.1 on a free port with its socket in the data directory, trust authentication,
//! started with `pg_ctl` and stopped by pid. PostgreSQL refuses to run as root, so as root the
//! server runs as the `postgres` system user.

use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A running (or stopped, between [`PgServer::stop`] and [`PgServer::start_again`]) server.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres_user: bool,
    databases: std::sync::atomic::AtomicU32,
}

/// The directory with `initdb`, `pg_ctl` and `psql`: `PATH` first, else the newest
/// `/usr/lib/postgresql/*/bin` (the Debian layout, where they are not on `PATH`).
fn bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .find(|d| d.join("initdb").exists() && d.join("pg_ctl").exists());
    // A symlink on PATH (e.g. /usr/local/bin/initdb) points into the real bin directory,
    // which also has pg_isready and psql.
    if let Some(dir) = on_path.and_then(|d| std::fs::canonicalize(d.join("initdb")).ok()) {
        return dir.parent().expect("initdb is in a directory").to_owned();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path().join("bin"))
                .filter(|b| b.join("initdb").exists())
                .collect()
        })
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        p.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin): \
             run .ci/install-postgresql.sh (Debian package postgresql; CI runs it)"
        )
    })
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl PgServer {
    /// Creates a data directory and starts a server on it; waits until it accepts connections.
    pub fn start() -> PgServer {
        let bin = bin_dir();
        let as_postgres_user = unsafe { libc::geteuid() } == 0;
        let dir = tempfile::Builder::new()
            .prefix("deckhand-pg-")
            .tempdir()
            .expect("temp dir");
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of the data directory failed");
        }
        let server = PgServer {
            bin,
            dir,
            port: free_port(),
            as_postgres_user,
            databases: std::sync::atomic::AtomicU32::new(0),
        };
        let data = server.data();
        let out = server
            .command("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("initdb runs");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.start_again();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// A PostgreSQL program, run as the server's user.
    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/DATABASE` (trust authentication: no password).
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Runs SQL with `psql` on database `postgres`; returns its output.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let out = self
            .command("psql")
            .args([
                "-X",
                "-A",
                "-t",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
            ])
            .args(["-p", &self.port.to_string(), "-d", database, "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// A new, empty database of its own for one test; returns its URL.
    pub fn fresh_database(&self) -> String {
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The postmaster's pid, from `postmaster.pid` (absent while stopped).
    pub fn pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// Starts the server on the same data directory and port; waits until it is ready.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-o", &options, "-w", "-t", "60", "start"])
            .output()
            .expect("pg_ctl runs");
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        self.wait_accepting(Duration::from_secs(30));
    }

    fn wait_accepting(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let ready = self
                .command("pg_isready")
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not accept connections: {}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown: connections are closed) and waits for it to exit.
    pub fn stop(&self) {
        let out = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "fast", "-w", "-t", "60", "stop"])
            .output()
            .expect("pg_ctl runs");
        if !out.status.success() {
            self.kill();
        }
    }

    /// Turns TLS on (`ssl = on`) with a certificate for `127.0.0.1` signed by a throw-away CA,
    /// restarts the server, and returns the path of the CA's PEM (what `[state] ca_file`
    /// names).
    pub fn enable_tls(&self) -> PathBuf {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, SanType};
        let ca_key = KeyPair::generate().expect("a CA key");
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca_params.self_signed(&ca_key).expect("a CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let key = KeyPair::generate().expect("a server key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("server params");
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::Ipv4Addr::LOCALHOST.into()));
        let cert = params
            .signed_by(&key, &issuer)
            .expect("a server certificate");
        let data = self.data();
        std::fs::write(data.join("server.crt"), cert.pem()).expect("server.crt written");
        let key_path = data.join("server.key");
        std::fs::write(&key_path, key.serialize_pem()).expect("server.key written");
        // PostgreSQL refuses a key others can read; it must belong to the server's user.
        std::fs::set_permissions(
            &key_path,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("server.key mode");
        if self.as_postgres_user {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(data.join("server.crt"))
                .arg(&key_path)
                .status()
                .expect("chown runs");
            assert!(status.success(), "chown of the certificate failed");
        }
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).expect("postgresql.conf");
        text.push_str("\nssl = on\n");
        std::fs::write(&conf, text).expect("postgresql.conf written");
        let ca = self.dir.path().join("ca.pem");
        std::fs::write(&ca, ca_cert.pem()).expect("ca.pem written");
        self.stop();
        self.start_again();
        ca
    }

    /// SIGKILLs the postmaster by pid, for crash tests; waits until it is gone, then removes
    /// its lock file (so a later drop never signals a pid that may have been reused, and a
    /// restart is not refused while the dead postmaster waits to be reaped).
    pub fn kill(&self) {
        if let Some(pid) = self.pid() {
            // Its backends too: they would hold the shared memory a restart needs.
            let children = children_of(pid);
            for p in std::iter::once(pid).chain(children.iter().copied()) {
                unsafe {
                    libc::kill(p, libc::SIGKILL);
                }
            }
            for p in std::iter::once(pid).chain(children) {
                wait_gone(p);
            }
            let socket = self.dir.path().join(format!(".s.PGSQL.{}", self.port));
            for stale in [
                self.data().join("postmaster.pid"),
                socket.with_extension(format!("{}.lock", self.port)),
                socket,
            ] {
                let _ = std::fs::remove_file(stale);
            }
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

/// Processes whose parent is `pid` (from /proc).
fn children_of(pid: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|child| {
            std::fs::read_to_string(format!("/proc/{child}/stat")).is_ok_and(|stat| {
                stat.rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1)?.parse::<i32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// Whether `pid` runs (a zombie waiting to be reaped by init does not).
fn running(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        // The state follows the parenthesised command name.
        stat.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Waits (at most 10 s) until process `pid` has exited.
fn wait_gone(pid: i32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while running(pid) {
        assert!(
            Instant::now() < deadline,
            "postgres pid {pid} still runs after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let Some(pid) = self.pid() else { return };
        let stopped = self
            .command("pg_ctl")
            .arg("-D")
            .arg(self.data())
            .args(["-m", "immediate", "-w", "-t", "10", "stop"])
            .output()
            .is_ok_and(|out| out.status.success());
        if stopped {
            wait_gone(pid);
        } else {
            self.kill();
        }
    }
}

/// One server for the tests of a process that overlap: the live one while any test holds it,
/// else a new one; it stops when the last holder drops it.
pub fn shared() -> Arc<PgServer> {
    static SHARED: Mutex<Weak<PgServer>> = Mutex::new(Weak::new());
    let mut slot = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(server) = slot.upgrade() {
        return server;
    }
    let server = Arc::new(PgServer::start());
    *slot = Arc::downgrade(&server);
    server
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alive(pid: i32) -> bool {
        running(pid)
    }

    #[test]
    fn serves_fresh_databases_and_keeps_data_across_a_restart() {
        let server = PgServer::start();
        let a = server.fresh_database();
        let b = server.fresh_database();
        assert_ne!(a, b);
        let db = a.rsplit('/').next().unwrap();
        server.psql(db, "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('kept')");
        server.stop();
        assert_eq!(server.pid(), None, "stopped");
        server.start_again();
        assert_eq!(server.psql(db, "SELECT v FROM t"), "kept");
        let pid = server.pid().unwrap();
        let dir = server.dir.path().to_owned();
        drop(server);
        assert!(!alive(pid), "dropped: the process is gone");
        assert!(!dir.exists(), "dropped: the data directory is gone");
    }

    #[test]
    fn kill_leaves_no_process() {
        let server = PgServer::start();
        let pid = server.pid().unwrap();
        server.kill();
        assert!(!alive(pid));
        assert_eq!(server.pid(), None, "no stale lock file left to signal");
        server.start_again();
        assert_eq!(
            server.psql("postgres", "SELECT 1"),
            "1",
            "restarts after a crash"
        );
    }

    #[test]
    fn shared_is_one_server_while_held() {
        let one = shared();
        let two = shared();
        assert!(Arc::ptr_eq(&one, &two));
        assert_eq!(one.psql("postgres", "SELECT 1"), "1");
    }
}
