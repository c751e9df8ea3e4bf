//! The tests' one Postgres harness: a real server (Debian's `postgresql` package:
//! `/usr/lib/postgresql/<version>/bin`, the newest there, or the directory in `PG_BIN`) made
//! by `initdb` in a temp dir of its own, on a free loopback port, started and stopped with
//! `pg_ctl`, stopped and removed on drop. Skipped with a message when the programs are
//! missing, except under CI (`CI` set, as `.ci/run` does), where that fails the test.
//!
//! Postgres refuses to run as root: when the tests do (as CI does), every program runs as
//! the `postgres` user (`runuser`), which owns the temp dir. `fsync` and
//! `synchronous_commit` keep their defaults (on): the tests prove durability. One server
//! per test (`initdb` takes about a second), so tests never share a database.

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use super::TempDir;

/// A Postgres server of a test's own.
pub struct PostgresServer {
    bin: PathBuf,
    dir: TempDir,
    port: u16,
    running: bool,
    /// `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication, no password).
    pub url: String,
}

impl PostgresServer {
    /// Makes a cluster and starts it; `None` (failing under CI) when the programs are
    /// missing.
    pub async fn start() -> Option<Self> {
        let bin = match find_bin() {
            Some(bin) => bin,
            None if std::env::var_os("CI").is_none() => {
                eprintln!("skipping: no Postgres (initdb, pg_ctl); .ci/run installs it");
                return None;
            }
            None => panic!("Postgres (initdb, pg_ctl) is required in CI"),
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = TempDir::new(&format!("postgres-{port}"));
        if as_root() {
            let status = Command::new("chown")
                .args(["postgres:", path_str(dir.path())])
                .status()
                .expect("chown");
            assert!(status.success(), "the postgres user owns the temp dir");
        }
        let mut server = Self {
            bin,
            port,
            running: false,
            url: format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            dir,
        };
        // `--no-sync`: initdb does not sync the files it makes (the server syncs its own
        // writes from then on: `fsync` stays on).
        let data = server.data();
        let output = server.run(
            "initdb",
            &[
                "-D",
                path_str(&data),
                "--no-sync",
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        assert!(output.status.success(), "initdb: {}", text(&output));
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The port it listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Runs one of the server's programs (as the `postgres` user when the tests run as
    /// root).
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let program = self.bin.join(program);
        let mut command = if as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        command
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("run a Postgres program")
    }

    /// Starts it (again) on the same port and files, and waits until it accepts
    /// connections: a server stopped by [`kill`](Self::kill) first replays its WAL.
    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} \
             -c shared_buffers=16MB -c max_connections=100",
            self.port,
            path_str(self.dir.path())
        );
        let log = self.dir.path().join("postgres.log");
        let output = self.run(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data()),
                "-l",
                path_str(&log),
                "-w",
                "-t",
                "30",
                "-o",
                &options,
                "start",
            ],
        );
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            output.status.success(),
            "pg_ctl start: {}{log}",
            text(&output)
        );
        self.running = true;
    }

    /// A clean stop (`pg_ctl stop -m fast`: sessions are ended, a checkpoint is written).
    pub fn stop(&mut self) {
        self.pg_ctl_stop("fast");
    }

    /// A crash, as far as what is on disk goes (`pg_ctl stop -m immediate`: every process
    /// quits at once, no checkpoint; the next start replays the WAL). What survives it is
    /// what was synced.
    pub fn kill(&mut self) {
        self.pg_ctl_stop("immediate");
    }

    fn pg_ctl_stop(&mut self, mode: &str) {
        if !self.running {
            return;
        }
        let output = self.run(
            "pg_ctl",
            &["-D", path_str(&self.data()), "-m", mode, "-w", "stop"],
        );
        assert!(output.status.success(), "pg_ctl stop: {}", text(&output));
        self.running = false;
    }

    /// One SQL script through `psql` as the superuser, stopping at the first error; its
    /// output, trimmed (`-At`: values only).
    pub fn psql(&self, sql: &str) -> String {
        let port = self.port.to_string();
        let output = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-v",
                "ON_ERROR_STOP=1",
                "-At",
                "-c",
                sql,
            ],
        );
        assert!(output.status.success(), "psql {sql}: {}", text(&output));
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // As kill, without failing a test that is already failing.
        if self.running {
            let _ = self.run(
                "pg_ctl",
                &[
                    "-D",
                    path_str(&self.data()),
                    "-m",
                    "immediate",
                    "-w",
                    "stop",
                ],
            );
        }
    }
}

/// `PG_BIN`, or the newest `/usr/lib/postgresql/<version>/bin` with `initdb` in it.
fn find_bin() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(bin)).filter(|bin| bin.join("initdb").is_file());
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    versions
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .max()
        .map(|(_, bin)| bin)
}

fn as_root() -> bool {
    let uid = Command::new("id").arg("-u").output().expect("id -u");
    String::from_utf8_lossy(&uid.stdout).trim() == "0"
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temp path")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}
