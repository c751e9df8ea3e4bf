//! The tests' one `redis-server` harness: a real server on a free loopback port, its files
//! in a temp dir of its own, killed on drop. Skipped with a message when `redis-server` is
//! missing, except under CI (`CI` set, as `.ci/run` does), where that fails the test.

use std::{
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use super::{TIMEOUT, TempDir};

/// How to start a [`RedisServer`].
#[derive(Debug, Default, Clone, Copy)]
pub struct Builder {
    durable: bool,
}

impl Builder {
    /// The durable settings the inbox's Redis store asks for: `appendonly yes`,
    /// `appendfsync always` (each write on disk before Redis answers), so that a restart
    /// loses nothing acknowledged; and `CONFIG SET dir` allowed (`enable-protected-configs
    /// local`), to make snapshots fail. Without it: no AOF, no snapshots.
    pub fn durable(mut self) -> Self {
        self.durable = true;
        self
    }

    /// Starts one and waits until it answers `PING`; `None` (failing under CI) when
    /// `redis-server` is missing.
    pub async fn start(self) -> Option<RedisServer> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = RedisServer {
            child: None,
            port,
            durable: self.durable,
            dir: TempDir::new(&format!("redis-{port}")),
            url: format!("redis://127.0.0.1:{port}"),
        };
        match redis.spawn() {
            Ok(()) => {}
            Err(error) if std::env::var_os("CI").is_none() => {
                eprintln!("skipping: cannot start redis-server ({error}); .ci/run installs it");
                return None;
            }
            Err(error) => panic!("redis-server is required in CI: {error}"),
        }
        redis.ready().await;
        Some(redis)
    }
}

/// A running `redis-server`.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    durable: bool,
    dir: TempDir,
    /// `redis://127.0.0.1:<port>`.
    pub url: String,
}

impl RedisServer {
    pub fn builder() -> Builder {
        Builder::default()
    }

    /// One without persistence: `RedisServer::builder().start()`.
    pub async fn start() -> Option<Self> {
        Self::builder().start().await
    }

    /// Where its files are (its `dir`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null());
        if self.durable {
            command
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .args(["--enable-protected-configs", "local"]);
        } else {
            command.args(["--appendonly", "no"]);
        }
        self.child = Some(command.spawn()?);
        Ok(())
    }

    /// Waits until it answers `PING` (a durable one answers once its AOF is loaded).
    async fn ready(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while !self.pong().await {
            assert!(Instant::now() < deadline, "redis-server starts");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn pong(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)).await else {
            return false;
        };
        if stream.write_all(b"PING\r\n").await.is_err() {
            return false;
        }
        let mut reply = [0; 7];
        let read = tokio::time::timeout(TIMEOUT, stream.read_exact(&mut reply)).await;
        matches!(read, Ok(Ok(_))) && &reply == b"+PONG\r\n"
    }

    /// SIGKILL: no chance to write anything more; waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Kills it and starts it again on the same port and files.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().expect("redis-server restarts");
        self.ready().await;
    }

    /// One command through `redis-cli`; its output, trimmed.
    pub fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
