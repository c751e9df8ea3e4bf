//! Test helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

pub mod example;
pub mod postgres;
pub mod redis_server;
pub mod small_disk;
pub mod wire;

// Unused in a build without the features of the Redis tests.
#[allow(unused_imports)]
pub use redis_server::RedisServer;
// Unused in a build without the features of the Postgres tests.
#[allow(unused_imports)]
pub use postgres::PostgresServer;

use std::{
    collections::VecDeque,
    convert::Infallible,
    io,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll},
};

use authgear_webhook::{Verified, VerifiedBody};
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

/// The one secret the tests sign with.
pub const SECRET: &str = "Lx8k3mVq2ZpT9wR4yN6bC1dF7gH0jK5s";

/// The blocking event types (Authgear waits for their answer): the payloads of
/// `pkg/api/event/blocking/*.go` in authgear-server (`tests/fixtures/events/README.md`).
pub const BLOCKING: [&str; 9] = [
    "user.pre_create",
    "user.profile.pre_update",
    "user.pre_schedule_deletion",
    "user.pre_schedule_anonymization",
    "oidc.jwt.pre_create",
    "oidc.id_token.pre_create",
    "authentication.pre_initialize",
    "authentication.post_identified",
    "authentication.pre_authenticated",
];

/// A boxed error, for bodies and clients.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One step of a [`Script`]: what the body does when it is polled next.
#[derive(Debug, Clone)]
pub enum Step {
    /// A data frame.
    Data(Bytes),
    /// A trailers frame.
    Trailers(HeaderMap),
    /// An error, as when the client's connection breaks off.
    Error,
    /// `Pending` once, waking itself at once: a body whose next frame is not there yet.
    Pending,
    /// `Pending` from now on, never woken: a client that stalls.
    Stall,
    /// Panics: proves that nobody reads the body.
    Panic,
}

/// A request body that plays its steps one per poll, then ends (`None`). Its size hint is
/// unknown, like a chunked HTTP/1.1 body's, unless set with [`Script::exact`].
#[derive(Debug)]
pub struct Script {
    steps: VecDeque<Step>,
    size_hint: SizeHint,
}

impl Script {
    pub fn new(steps: impl IntoIterator<Item = Step>) -> Self {
        Self {
            steps: steps.into_iter().collect(),
            size_hint: SizeHint::default(),
        }
    }

    /// `body` as data frames split at the given lengths (the rest in a last frame).
    pub fn split(body: &[u8], lengths: &[usize]) -> Self {
        let mut steps = Vec::new();
        let mut rest = body;
        for &length in lengths {
            let (head, tail) = rest.split_at(length.min(rest.len()));
            steps.push(Step::Data(Bytes::copy_from_slice(head)));
            rest = tail;
        }
        steps.push(Step::Data(Bytes::copy_from_slice(rest)));
        Self::new(steps)
    }

    pub fn then(mut self, step: Step) -> Self {
        self.steps.push_back(step);
        self
    }

    pub fn then_trailers(self, trailers: HeaderMap) -> Self {
        self.then(Step::Trailers(trailers))
    }

    pub fn then_error(self) -> Self {
        self.then(Step::Error)
    }

    /// Announces exactly `length` bytes (as hyper does from `Content-Length`), whatever the
    /// steps yield.
    pub fn exact(mut self, length: u64) -> Self {
        self.size_hint = SizeHint::with_exact(length);
        self
    }
}

impl Body for Script {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.steps.pop_front() {
            Some(Step::Data(data)) => Poll::Ready(Some(Ok(Frame::data(data)))),
            Some(Step::Trailers(trailers)) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
            Some(Step::Error) => Poll::Ready(Some(Err(io::Error::other("connection reset")))),
            Some(Step::Pending) => {
                cx.waker().wake_by_ref();
                Poll::Pending
            }
            Some(Step::Panic) => panic!("the body was read"),
            Some(Step::Stall) => {
                self.steps.push_front(Step::Stall);
                Poll::Pending
            }
            None => Poll::Ready(None),
        }
    }

    fn size_hint(&self) -> SizeHint {
        self.size_hint
    }
}

/// What the inner service saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub trailers: Option<HeaderMap>,
    pub verified: Option<Verified>,
}

/// An inner service that records every request it is called with and answers 200 "inner".
#[derive(Debug, Clone, Default)]
pub struct Recorder {
    seen: Arc<Mutex<Vec<Seen>>>,
    calls: Arc<AtomicUsize>,
}

impl Recorder {
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("not poisoned").clone()
    }

    pub fn service(
        &self,
    ) -> impl tower::Service<
        Request<VerifiedBody>,
        Response = Response<String>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<String>, Infallible>> + Send,
    > + Clone
    + Send
    + Sync
    + 'static {
        let recorder = self.clone();
        tower::service_fn(move |request: Request<VerifiedBody>| {
            let recorder = recorder.clone();
            async move {
                recorder.calls.fetch_add(1, Ordering::SeqCst);
                let verified = request.extensions().get::<Verified>().copied();
                let (parts, body) = request.into_parts();
                let collected = body.collect().await.expect("infallible");
                let trailers = collected.trailers().cloned();
                recorder.seen.lock().expect("not poisoned").push(Seen {
                    headers: parts.headers,
                    body: collected.to_bytes(),
                    trailers,
                    verified,
                });
                Ok(Response::new("inner".to_owned()))
            }
        })
    }
}

/// Collects a response body to a string.
pub async fn text<B>(response: Response<B>) -> String
where
    B: Body,
    B::Error: std::fmt::Debug,
{
    let bytes = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

/// A realistic delivery from `tests/fixtures/events/`, as Authgear's server encodes it.
pub fn fixture_event(event_type: &str) -> Vec<u8> {
    fixture(&format!("events/{event_type}.json"))
}

/// [`fixture_event`] with `id`, stamped now (within replay protection's window).
pub fn stamped_event(event_type: &str, id: &str) -> Vec<u8> {
    let mut event: serde_json::Value =
        serde_json::from_slice(&fixture_event(event_type)).expect("json");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    event["context"]["timestamp"] = now.into();
    event["id"] = id.into();
    serde_json::to_vec(&event).expect("json")
}

/// The file `tests/fixtures/{path}` of the repository, from the test of any package in it:
/// this one, or an example's (`examples/*/`, whose tests run in their own directory).
pub fn fixture(path: &str) -> Vec<u8> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("tests/fixtures").is_dir())
        .expect("tests/fixtures in the repository");
    std::fs::read(root.join("tests/fixtures").join(path)).expect("fixture")
}

/// Bounds every network wait of the tests.
pub const TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Serves `router` on a fresh loopback port (HTTP/1.1 and HTTP/2) and returns its address.
pub async fn serve(router: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// A real HTTP client; `http2` selects HTTP/2 with prior knowledge.
pub fn client<B>(
    http2: bool,
) -> hyper_util::client::legacy::Client<hyper_util::client::legacy::connect::HttpConnector, B>
where
    B: Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(http2)
        .build_http()
}

/// Writes `raw` to a new connection to `addr` and returns everything read back until the
/// server closes or `TIMEOUT` passes. `close_write` half-closes after writing.
pub async fn raw_exchange(addr: std::net::SocketAddr, raw: &[u8], close_write: bool) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(raw).await.expect("write");
    if close_write {
        stream.shutdown().await.expect("shutdown");
    }
    let mut response = Vec::new();
    let mut buf = [0; 4096];
    let read = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
            // One response is all these tests expect: stop at the end of its body.
            if response_complete(&response) {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(TIMEOUT, read).await;
    String::from_utf8_lossy(&response).into_owned()
}

/// Whether `raw` holds a whole response head and as much body as its Content-Length says.
fn response_complete(raw: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(raw) else {
        return false;
    };
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    head.lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<usize>().ok())?
        })
        .is_some_and(|length| body.len() >= length)
}

/// A directory of its own under the system's temp dir (named after the process, `name` and
/// the clock, so that tests running side by side never share one), removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "authgear-webhook-test-{}-{name}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Where a test's tracing subscriber writes: a shared buffer. Install the subscriber with
/// `tracing::subscriber::set_default` (this thread only): the tests of the suite run side by
/// side in one process.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0
            .lock()
            .expect("not poisoned")
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// What was written since the last `take`.
    pub fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().expect("not poisoned")))
            .expect("utf-8")
    }
}

/// Posts `body` to `url` over a real HTTP/1.1 connection, with `signature` in the signature
/// header when given; the status, the content type and the body.
pub async fn post(
    url: &str,
    body: &[u8],
    signature: Option<String>,
) -> (http::StatusCode, Option<String>, String) {
    let mut request = Request::post(url);
    if let Some(signature) = signature {
        request = request.header(authgear_webhook::SIGNATURE_HEADER, signature);
    }
    let request = request
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(http_body_util::Full::new(Bytes::copy_from_slice(body)))
        .expect("request");
    let response = tokio::time::timeout(TIMEOUT, client(false).request(request))
        .await
        .expect("in time")
        .expect("a response");
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().expect("ascii").to_owned());
    (status, content_type, text(response).await)
}

/// `method` `url` over a real connection, no body: the status, the `Allow` header and the
/// JSON answered (`Null` if it is not JSON).
pub async fn call_json(
    method: http::Method,
    url: &str,
) -> (http::StatusCode, Option<String>, serde_json::Value) {
    let request = Request::builder()
        .method(method)
        .uri(url)
        .body(http_body_util::Empty::<Bytes>::new())
        .expect("request");
    let response = tokio::time::timeout(TIMEOUT, client(false).request(request))
        .await
        .expect("answered in time")
        .expect("a response");
    let status = response.status();
    let allow = response
        .headers()
        .get(http::header::ALLOW)
        .map(|allow| allow.to_str().expect("ascii").to_owned());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    (status, allow, json)
}
