//! The crate's examples as real processes: built, run with a time limit, and (the servers)
//! started on a free loopback port. The examples of this package are built here on demand
//! ([`path`]); an example that is a package of its own is built by `cargo test` with its
//! tests ([`Server::start_binary`]).

use std::{
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::{Arc, Mutex, mpsc},
    thread,
    time::{Duration, Instant},
};

use http::StatusCode;

use super::TIMEOUT;

/// The secret the example servers are started with unless told otherwise.
pub use super::SECRET;

/// How long building an example may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(600);

/// The binary of the example `name`, built now if it is not up to date (`cargo test` builds
/// the examples only when no target is named), with every feature: a test that runs an
/// example requires the example's features, and `--all-features` builds the library the
/// way `cargo test --all-features` already did. The library's package is named, so the
/// command-line tool's tests (cli/, which share this harness) build the same binary: the
/// workspace has one target dir, the one the running test binary is in.
pub fn path(name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|built| built == name) {
        built.push(name.to_owned());
        let mut cargo = Command::new(env!("CARGO"));
        cargo.args([
            "build",
            "-p",
            "authgear-webhook",
            "--all-features",
            "--example",
            name,
        ]);
        // Without what cargo sets for a test process: `ring`'s build script reruns when
        // `CARGO_MANIFEST_DIR` or `CARGO_PKG_*` change, so this build and the `cargo test`
        // that ran it would rebuild `ring` and all above it for each other, ~20 s each time.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if [
                "CARGO_MANIFEST_",
                "CARGO_PKG_",
                "CARGO_CRATE_",
                "CARGO_BIN_",
            ]
            .iter()
            .any(|prefix| key.starts_with(prefix))
                || key == "CARGO_PRIMARY_PACKAGE"
                || key == "CARGO_TARGET_TMPDIR"
            {
                cargo.env_remove(key.as_ref());
            }
        }
        let output = run(&mut cargo, BUILD_TIMEOUT);
        assert!(output.status.success(), "{name} builds: {}", output.stderr);
    }
    path
}

/// What a finished process did.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to its end; kills it and panics if it takes longer than `limit`.
pub fn run(command: &mut Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the command runs");
    let stdout = read_all(child.stdout.take().expect("piped"));
    let stderr = read_all(child.stderr.take().expect("piped"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} still runs after {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let joined = |reader: thread::JoinHandle<String>| reader.join().expect("reader");
    Output {
        status,
        stdout: joined(stdout),
        stderr: joined(stderr),
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> thread::JoinHandle<String> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// A running example server: its address and the lines it prints.
pub struct Server {
    child: Child,
    pub addr: String,
    /// The admin listener's address (`ADMIN_ADDR`), when the startup line names one.
    pub admin: Option<String>,
    /// The first line: `listening on http://ADDR (...)`.
    pub startup: String,
    lines: mpsc::Receiver<String>,
    /// The `handled {type} {id}` lines (one per run of the handler), kept apart from the
    /// others so that `next_line` reads the per-request lines in order.
    handled: Arc<Mutex<Vec<String>>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Starts the example server `name` with [`SECRET`], a free port, no Redis or replay
    /// settings and no inbox, then `env` (which may override them; an empty value unsets
    /// the variable).
    pub fn start(name: &str, env: &[(&str, &str)]) -> Self {
        Self::start_binary(path(name), env)
    }

    /// Starts the server at `binary` as [`start`](Self::start) does: an example that is a
    /// package of its own (`examples/*/`), whose test names its binary with
    /// `env!("CARGO_BIN_EXE_<name>")`.
    pub fn start_binary(binary: impl AsRef<std::ffi::OsStr>, env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(binary);
        command
            .env("AUTHGEAR_WEBHOOK_SECRET", SECRET)
            .env("ADDR", "127.0.0.1:0")
            .env_remove("REDIS_URL")
            .env_remove("DATABASE_URL")
            .env_remove("AUTHGEAR_WEBHOOK_REPLAY")
            .env_remove("AUTHGEAR_ADMIN_API_ENDPOINT")
            .env_remove("AUTHGEAR_APP_ID")
            .env_remove("AUTHGEAR_ADMIN_API_KEY_FILE")
            .env_remove("AUTHGEAR_ADMIN_API_KEY_ID")
            .env_remove("ADMIN_ADDR")
            .env_remove("FAIL_EVENT_TYPES")
            .env_remove("AUTHGEAR_WEBHOOK_MAX_ATTEMPTS")
            // Non-blocking events inline (their own line, in order); the inbox tests run
            // the example with its inbox.
            .env("AUTHGEAR_WEBHOOK_INBOX", "off");
        for (name, value) in env {
            match value {
                &"" => command.env_remove(name),
                value => command.env(name, value),
            };
        }
        let mut child = command
            .stdout(Stdio::piped())
            .spawn()
            .expect("the example runs");
        let stdout = child.stdout.take().expect("piped");
        let (send, lines) = mpsc::channel();
        let handled = Arc::new(Mutex::new(Vec::new()));
        let handled_lines = handled.clone();
        let reader = thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("handled ") {
                    let mut handled = handled_lines.lock().unwrap_or_else(|p| p.into_inner());
                    handled.push(line);
                } else {
                    let _ = send.send(line);
                }
            }
        });
        let first = lines.recv_timeout(TIMEOUT).expect("the server starts");
        let addr = first
            .strip_prefix("listening on http://")
            .and_then(|rest| rest.split(' ').next())
            .expect("a listening line")
            .to_owned();
        // `admin: http://ADDR,` in the startup line's settings.
        let admin = first
            .split_once("admin: http://")
            .and_then(|(_, rest)| rest.split([',', ')']).next())
            .map(str::to_owned);
        Self {
            child,
            addr,
            admin,
            startup: first,
            lines,
            handled,
            reader: Some(reader),
        }
    }

    /// Kills the server with SIGKILL (no chance to finish anything) and waits until it is
    /// gone and all it printed is read: `handled` and `lines_left` are then complete.
    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
        if let Some(reader) = self.reader.take() {
            reader.join().expect("the reader ends with the process");
        }
    }

    /// Sends SIGTERM; the exit status once the server has stopped (fails after `TIMEOUT`).
    pub fn terminate(&mut self) -> ExitStatus {
        let term = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(term.success());
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(Instant::now() < deadline, "still running after SIGTERM");
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// The lines other than `handled` ones not yet read by `next_line`.
    pub fn lines_left(&self) -> Vec<String> {
        self.lines.try_iter().collect()
    }

    /// The ids of the `handled {event_type} {id}` lines printed so far, in order.
    pub fn handled_ids(&self, event_type: &str) -> Vec<String> {
        let prefix = format!("handled {event_type} ");
        self.handled()
            .iter()
            .filter_map(|line| line.strip_prefix(&prefix))
            .map(str::to_owned)
            .collect()
    }

    /// The `handled` lines printed so far. Lines come in order: once `next_line` has
    /// returned a line printed after a run of the handler, that run's line is here.
    pub fn handled(&self) -> Vec<String> {
        self.handled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// `http://`, the admin address and `path`; panics if the server has no admin listener.
    pub fn admin_url(&self, path: &str) -> String {
        let admin = self.admin.as_deref().expect("started with ADMIN_ADDR");
        format!("http://{admin}{path}")
    }

    /// `http://` and the address.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    pub fn next_line(&self) -> String {
        self.lines.recv_timeout(TIMEOUT).expect("a log line")
    }

    pub async fn post(
        &self,
        body: &[u8],
        signature: Option<String>,
    ) -> (StatusCode, Option<String>, String) {
        super::post(&self.url(), body, signature).await
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
