//! Secrets that change while the server runs, over a real socket: a handle set while
//! deliveries flow (none refused for the change, the new secret at once, the removed one
//! refused); a file rewritten, emptied, broken and half-written; a source per project, and a
//! handle per route.

use std::{
    net::SocketAddr,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use authgear_webhook::{
    BodyBudget, SIGNATURE_HEADER, SecretFileErrorKind, Secrets, VerifySignatureLayer, sign,
};
use axum::{
    Router,
    body::Bytes,
    http::{Request, StatusCode, request::Parts},
    routing::post,
};
use http_body_util::{BodyExt, Full};
use tokio::{sync::mpsc, time::timeout};

use crate::common::{TIMEOUT, TempDir, client, serve};

const EVENT: &str = r#"{"id":"0000000000000001","seq":1,"type":"user.created"}"#;

/// How long a file change may take to be in use (the bound the docs promise is about 2 s).
const FILE_CHANGE: Duration = Duration::from_secs(5);

/// Posts the event to `path` signed with `secret`; the status.
async fn deliver(addr: SocketAddr, path: &str, secret: &str) -> StatusCode {
    let request = Request::post(format!("http://{addr}{path}"))
        .header(SIGNATURE_HEADER, sign(secret, EVENT.as_bytes()))
        .body(Full::new(Bytes::from_static(EVENT.as_bytes())))
        .expect("request");
    let response = timeout(TIMEOUT, client(false).request(request))
        .await
        .expect("in time")
        .expect("response");
    response.status()
}

/// Delivers until `want` is the answer, for at most `within`; whether it came.
async fn answers_within(
    addr: SocketAddr,
    secret: &str,
    want: StatusCode,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if deliver(addr, "/", secret).await == want {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn app(layer: VerifySignatureLayer) -> Router {
    Router::new()
        .route("/", post(|| async { "ok" }))
        .route("/hooks/{project}", post(|| async { "ok" }))
        .layer(layer)
}

/// Deliveries that flow from `tasks` tasks, each signed with the secret `secret` names at
/// its start, until `stop`; counts the answers that were not 200.
struct Flow {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicUsize>,
    tasks: Vec<tokio::task::JoinHandle<Vec<StatusCode>>>,
}

impl Flow {
    fn start(addr: SocketAddr, secret: Arc<std::sync::Mutex<&'static str>>, tasks: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicUsize::new(0));
        let tasks = (0..tasks)
            .map(|_| {
                let (stop, sent, secret) = (stop.clone(), sent.clone(), secret.clone());
                tokio::spawn(async move {
                    let mut failed = Vec::new();
                    while !stop.load(Ordering::SeqCst) {
                        let with = *secret.lock().expect("not poisoned");
                        let status = deliver(addr, "/", with).await;
                        sent.fetch_add(1, Ordering::SeqCst);
                        if status != StatusCode::OK {
                            failed.push(status);
                        }
                    }
                    failed
                })
            })
            .collect();
        Self { stop, sent, tasks }
    }

    /// Waits until `more` deliveries have been answered since the call.
    async fn wait_for(&self, more: usize) {
        let until = self.sent.load(Ordering::SeqCst) + more;
        timeout(TIMEOUT, async {
            while self.sent.load(Ordering::SeqCst) < until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .expect("deliveries flow");
    }

    /// Stops the flow; the answers that were not 200, and how many were sent.
    async fn stop(self) -> (Vec<StatusCode>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        let mut failed = Vec::new();
        for task in self.tasks {
            failed.extend(task.await.expect("task"));
        }
        (failed, self.sent.load(Ordering::SeqCst))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handle_set_while_deliveries_flow() {
    let secrets = Secrets::new("old-secret");
    let budget = BodyBudget::new(1 << 20);
    // The slow delivery has a route of its own, whose layer (on the same handle) has a
    // budget of its own: it shows when that delivery's first bytes are held.
    let slow = VerifySignatureLayer::with_secrets(secrets.clone()).body_budget(budget.clone());
    let router = Router::new()
        .route(
            "/",
            post(|| async { "ok" }).layer(VerifySignatureLayer::with_secrets(secrets.clone())),
        )
        .route("/slow", post(|| async { "ok" }).layer(slow));
    let addr = serve(router).await;
    assert_eq!(deliver(addr, "/", "old-secret").await, StatusCode::OK);
    assert_eq!(
        deliver(addr, "/", "new-secret").await,
        StatusCode::UNAUTHORIZED
    );

    // Deliveries signed with a secret accepted before and after each change flow
    // throughout, as during a real rotation: none may fail.
    let flowing = Arc::new(std::sync::Mutex::new("old-secret"));
    let flow = Flow::start(addr, flowing.clone(), 4);
    flow.wait_for(20).await;

    // Both: the new secret is accepted right after the change.
    secrets
        .set(["new-secret", "old-secret"])
        .expect("not empty");
    assert_eq!(deliver(addr, "/", "new-secret").await, StatusCode::OK);
    flow.wait_for(20).await;
    *flowing.lock().expect("not poisoned") = "new-secret";
    flow.wait_for(20).await;

    // A delivery signed with the old secret, whose body is still arriving when the old
    // secret is removed: verified with the secrets of its arrival.
    let (send, receive) = mpsc::channel::<Bytes>(2);
    let request = Request::post(format!("http://{addr}/slow"))
        .header(SIGNATURE_HEADER, sign("old-secret", EVENT.as_bytes()))
        .body(Channel(receive))
        .expect("request");
    let in_flight = tokio::spawn(async move { client(false).request(request).await });
    let (head, rest) = EVENT.as_bytes().split_at(10);
    send.send(Bytes::from_static(head))
        .await
        .expect("body open");
    // The layer holds the first bytes: the request has arrived.
    timeout(TIMEOUT, async {
        while budget.in_use() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("the first bytes arrive");

    // Only the new secret: the old one is refused right after the change.
    secrets.set(["new-secret"]).expect("not empty");
    assert_eq!(
        deliver(addr, "/", "old-secret").await,
        StatusCode::UNAUTHORIZED
    );
    send.send(Bytes::from_static(rest))
        .await
        .expect("body open");
    drop(send);
    let response = timeout(TIMEOUT, in_flight)
        .await
        .expect("in time")
        .expect("task")
        .expect("response");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "in flight during the change"
    );
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body, "ok");

    flow.wait_for(20).await;
    let (failed, sent) = flow.stop().await;
    assert!(sent >= 100, "{sent} deliveries");
    assert_eq!(failed, Vec::<StatusCode>::new(), "of {sent} deliveries");

    // An empty set is refused, and the set in use stays.
    assert!(secrets.set(Vec::<String>::new()).is_err());
    assert_eq!(deliver(addr, "/", "new-secret").await, StatusCode::OK);
}

/// A request body whose chunks the test sends when it wants, as a client whose body is
/// still on its way.
struct Channel(mpsc::Receiver<Bytes>);

impl http_body::Body for Channel {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|chunk| Ok(http_body::Frame::data(chunk))))
    }
}

fn write(path: &Path, content: impl AsRef<[u8]>) {
    std::fs::write(path, content).expect("write the secrets file");
}

/// Waits until `secrets` reports a problem of `kind`, for at most `FILE_CHANGE`.
async fn problem_within(secrets: &Secrets, kind: SecretFileErrorKind) {
    let deadline = Instant::now() + FILE_CHANGE;
    loop {
        if let Some(problem) = secrets.problem().filter(|problem| problem.kind() == kind) {
            assert_eq!(problem.path(), secrets.file().expect("a file"));
            return;
        }
        assert!(Instant::now() < deadline, "no {kind:?} reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_rewritten_broken_and_recovered() {
    let dir = TempDir::new("secrets-file");
    let path = dir.path().join("webhook-secrets");
    write(&path, "first-secret\n");
    let secrets = Secrets::from_file(&path).expect("a good file");
    let addr = serve(app(VerifySignatureLayer::with_secrets(secrets.clone()))).await;
    assert_eq!(deliver(addr, "/", "first-secret").await, StatusCode::OK);

    // Rewritten with CRLF, blank lines and spaces: in use within seconds.
    write(&path, "\r\n  second-secret \r\n\r\nfirst-secret\r\n");
    assert!(answers_within(addr, "second-secret", StatusCode::OK, FILE_CHANGE).await);
    assert_eq!(deliver(addr, "/", "first-secret").await, StatusCode::OK);
    write(&path, "third-secret\n");
    assert!(answers_within(addr, "third-secret", StatusCode::OK, FILE_CHANGE).await);
    assert_eq!(
        deliver(addr, "/", "first-secret").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        deliver(addr, "/", "second-secret").await,
        StatusCode::UNAUTHORIZED
    );
    assert!(secrets.problem().is_none());

    // Each broken state keeps the last good secrets and is reported; then it recovers.
    let breaks: [(&str, SecretFileErrorKind); 4] = [
        ("empty", SecretFileErrorKind::Empty),
        ("garbage", SecretFileErrorKind::NotText),
        ("removed", SecretFileErrorKind::Unreadable),
        ("a directory", SecretFileErrorKind::Unreadable),
    ];
    for (round, (broken, kind)) in breaks.into_iter().enumerate() {
        match broken {
            "empty" => write(&path, "\n \n"),
            "garbage" => write(&path, [0x00, 0xff, 0x1b, 0x7f, b'\n', 0xfe, 0x00]),
            "removed" => std::fs::remove_file(&path).expect("remove"),
            _ => {
                std::fs::remove_file(&path).expect("remove");
                std::fs::create_dir(&path).expect("a directory in its place");
            }
        }
        problem_within(&secrets, kind).await;
        assert_eq!(
            deliver(addr, "/", "third-secret").await,
            StatusCode::OK,
            "{broken}: the last good secrets are kept"
        );
        let shown = secrets.problem().expect("a problem").to_string();
        assert!(shown.contains(&*path.to_string_lossy()), "{shown}");
        assert!(
            !shown.contains("secret\n") && !shown.contains("third"),
            "{shown}"
        );

        if broken == "a directory" {
            std::fs::remove_dir(&path).expect("remove the directory");
        }
        // Recovers with new secrets (or the same again: the problem ends too).
        let next = format!("recovered-{round}");
        match round % 2 {
            0 => write(&path, format!("{next}\nthird-secret\n")),
            _ => write(&path, "third-secret\n"),
        }
        let deadline = Instant::now() + FILE_CHANGE;
        while secrets.problem().is_some() {
            assert!(Instant::now() < deadline, "{broken}: still a problem");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if round % 2 == 0 {
            assert!(answers_within(addr, &next, StatusCode::OK, FILE_CHANGE).await);
        }
        assert_eq!(deliver(addr, "/", "third-secret").await, StatusCode::OK);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_caught_half_written_is_never_taken() {
    let dir = TempDir::new("secrets-half");
    let path = dir.path().join("webhook-secrets");
    write(&path, "old-secret\n");
    let secrets = Secrets::from_file(&path).expect("a good file");
    let addr = serve(app(VerifySignatureLayer::with_secrets(secrets.clone()))).await;

    // Each round writes a first part that is a file of one secret on its own, pauses, then
    // writes the rest; the whole keeps the old secret. Had the part been taken, the old
    // secret would be refused and the part accepted.
    let checking = Arc::new(AtomicBool::new(true));
    let part = Arc::new(std::sync::Mutex::new(String::from("none-yet")));
    let checker = tokio::spawn({
        let (checking, part) = (checking.clone(), part.clone());
        async move {
            let mut checks = 0;
            while checking.load(Ordering::SeqCst) {
                let partial = part.lock().expect("not poisoned").clone();
                assert_eq!(deliver(addr, "/", "old-secret").await, StatusCode::OK);
                assert_eq!(
                    deliver(addr, "/", &partial).await,
                    StatusCode::UNAUTHORIZED,
                    "{partial} taken"
                );
                checks += 1;
            }
            checks
        }
    });
    for round in 0..4 {
        let first = format!("rotated-{round}-part");
        *part.lock().expect("not poisoned") = first.clone();
        let whole = format!("{first}ial\nold-secret\n");
        let (head, rest) = whole.split_at(first.len());
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&path).expect("truncate");
            file.write_all(head.as_bytes()).expect("write the part");
            file.flush().expect("flush");
            tokio::time::sleep(Duration::from_millis(400)).await;
            file.write_all(rest.as_bytes()).expect("write the rest");
        }
        assert!(
            answers_within(addr, &format!("{first}ial"), StatusCode::OK, FILE_CHANGE).await,
            "round {round}: the whole file is taken"
        );
    }
    checking.store(false, Ordering::SeqCst);
    let checks = checker.await.expect("no partial file taken");
    assert!(checks > 10, "{checks} checks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_per_project_and_per_route() {
    let shop = Secrets::new("shop-secret");
    let blog = Secrets::new("blog-secret");
    let projects = [("shop", shop.clone()), ("blog", blog.clone())];
    let source = move |request: &Parts| {
        let project = request.uri.path().strip_prefix("/hooks/")?;
        projects
            .iter()
            .find(|(name, _)| *name == project)
            .map(|(_, secrets)| secrets.clone())
    };
    let addr = serve(app(VerifySignatureLayer::with_source(source))).await;
    let cases = [
        ("/hooks/shop", "shop-secret", StatusCode::OK),
        ("/hooks/blog", "blog-secret", StatusCode::OK),
        ("/hooks/shop", "blog-secret", StatusCode::UNAUTHORIZED),
        ("/hooks/blog", "shop-secret", StatusCode::UNAUTHORIZED),
        ("/hooks/other", "shop-secret", StatusCode::UNAUTHORIZED),
        ("/", "shop-secret", StatusCode::UNAUTHORIZED),
    ];
    for (path, secret, want) in cases {
        assert_eq!(deliver(addr, path, secret).await, want, "{path} {secret}");
    }
    // One project rotates; the other is untouched.
    shop.set(["shop-new"]).expect("not empty");
    assert_eq!(
        deliver(addr, "/hooks/shop", "shop-new").await,
        StatusCode::OK
    );
    assert_eq!(
        deliver(addr, "/hooks/shop", "shop-secret").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        deliver(addr, "/hooks/blog", "blog-secret").await,
        StatusCode::OK
    );

    // A project without secrets is refused as a wrong signature is, before the body.
    let request = Request::post(format!("http://{addr}/hooks/other"))
        .header(SIGNATURE_HEADER, sign("shop-new", EVENT.as_bytes()))
        .body(Full::new(Bytes::from_static(EVENT.as_bytes())))
        .expect("request");
    let response = client(false).request(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    assert_eq!(body, "invalid signature");

    // A handle per route, each route's layer its own.
    let a = Secrets::new("route-a");
    let b = Secrets::new("route-b");
    let per_route = Router::new()
        .route(
            "/a",
            post(|| async { "a" }).layer(VerifySignatureLayer::with_secrets(a.clone())),
        )
        .route(
            "/b",
            post(|| async { "b" }).layer(VerifySignatureLayer::with_secrets(b.clone())),
        );
    let addr = serve(per_route).await;
    assert_eq!(deliver(addr, "/a", "route-a").await, StatusCode::OK);
    assert_eq!(deliver(addr, "/b", "route-b").await, StatusCode::OK);
    assert_eq!(
        deliver(addr, "/a", "route-b").await,
        StatusCode::UNAUTHORIZED
    );
    b.set(["route-b2"]).expect("not empty");
    assert_eq!(deliver(addr, "/b", "route-b2").await, StatusCode::OK);
    assert_eq!(
        deliver(addr, "/b", "route-b").await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(deliver(addr, "/a", "route-a").await, StatusCode::OK);
}
