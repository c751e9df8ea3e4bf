//! Load benchmark: an axum server on loopback under wrk, without the layer (`plain`), behind
//! `VerifySignatureLayer` (`layer`), behind a naive `axum::middleware::from_fn` that
//! collects the body with `to_bytes`, verifies with `hmac` and rebuilds the request
//! (`naive`), and with no middleware but a handler that verifies the `Bytes` it is given
//! (`inline`: what the HMAC itself costs in this server), behind the layer with its body
//! budget and body deadline off (`unbounded`: what the flood protection costs, against
//! `layer`), and behind `tower-github-webhook` 0.2's layer (`github`: the closest Rust tower
//! peer, GitHub's HMAC-SHA256 scheme, which each request also carries as
//! `x-hub-signature-256`), and behind a layer that does nothing but hand the handler the body
//! under a type of its own and wrap the response's body (`pass`: what axum's boxing of a
//! layered route costs any such layer, verifying or not). Signed POSTs of 1 KiB and 64 KiB.
//! One more server is not in the rotation, for callgrind (BENCHMARKS.md section 3): the layer
//! around the whole router rather than in it (`LOAD_SERVER=around`).
//!
//! ```sh
//! cargo bench -p authgear-webhook-benches --bench load
//! LOAD_DURATION=10 LOAD_ROUNDS=5 cargo bench -p authgear-webhook-benches --bench load
//! ```
//!
//! One command: this binary starts the servers itself (itself again, with
//! `LOAD_SERVER=plain|layer|naive|inline|unbounded|github|pass`, on a current-thread
//! runtime), pins them to one core and wrk to the other (taskset), and runs wrk against
//! each in turn, interleaved, in rounds. It installs wrk (Debian's package) if it is
//! missing. Per run it reads the server's CPU time (utime + stime in `/proc/PID/stat`)
//! before and after, and divides by the requests wrk completed. In each round it also times HMAC-SHA256 alone over the same
//! bodies on the server's core, so the CPU the layer adds per request can be set against it.
//!
//! Settings (environment): `LOAD_DURATION` seconds per run (5), `LOAD_WARMUP` seconds (1),
//! `LOAD_ROUNDS` (3), `LOAD_CONNECTIONS` (32), `LOAD_SIZES` in bytes (`1024,65536`),
//! `LOAD_SERVER_CPU` (0), `LOAD_CLIENT_CPU` (1). Default run: under 3 minutes. Everything
//! stays on 127.0.0.1; the servers exit when this process goes away, and after 15 minutes in
//! any case. Results and how to read them: BENCHMARKS.md.

use std::{
    env, fs,
    hint::black_box,
    io::{BufRead, BufReader, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::{Child, Command, ExitCode, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

use authgear_webhook::{SIGNATURE_HEADER, VerifySignatureLayer, sign};
use axum::{
    Router,
    body::{Body, Bytes},
    extract::Request,
    http::StatusCode,
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::post,
};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use common::server;

const SECRET: &str = "bench-webhook-secret";
const MODES: [&str; 7] = [
    "plain",
    "layer",
    "naive",
    "inline",
    "unbounded",
    "github",
    "pass",
];
/// The header `github` verifies: GitHub's name for the same HMAC-SHA256 of the body.
const GITHUB_HEADER: &str = "x-hub-signature-256";

fn main() -> ExitCode {
    if let Ok(mode) = env::var("LOAD_SERVER") {
        return serve(&mode);
    }
    if let Ok(sizes) = env::var("LOAD_HMAC") {
        hmac_times(&parse_list(&sizes));
        return ExitCode::SUCCESS;
    }
    // `cargo test --benches` runs bench binaries without `--bench`: no load then.
    if !env::args().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    match drive() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("load: {error}");
            ExitCode::FAILURE
        }
    }
}

/// A JSON-looking ASCII body of exactly `len` bytes (the same as benches/common).
fn body(len: usize) -> Vec<u8> {
    let mut body = br#"{"type":"user.created","pad":""#.to_vec();
    body.resize(len.saturating_sub(2), b'x');
    body.extend_from_slice(br#""}"#);
    body.truncate(len);
    body
}

fn keyed() -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("HMAC takes any key")
}

// ---------------------------------------------------------------------------------------
// The servers

fn serve(mode: &str) -> ExitCode {
    // Built with `--features metrics`: every server counts into a Prometheus recorder, as
    // an application with an exporter does (BENCHMARKS.md, section 12).
    #[cfg(feature = "metrics")]
    let _metrics = match metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder() {
        Ok(handle) => {
            authgear_webhook::metrics::describe();
            handle
        }
        Err(error) => {
            eprintln!("load: cannot install the metrics recorder: {error}");
            return ExitCode::FAILURE;
        }
    };
    let app = Router::new().route("/", post(handler));
    let app = match mode {
        "plain" => app,
        "layer" => app.layer(VerifySignatureLayer::new(SECRET)),
        "unbounded" => app.layer(
            VerifySignatureLayer::new(SECRET)
                .body_budget(None)
                .body_deadline(None),
        ),
        "naive" => app.layer(middleware::from_fn(naive)),
        "inline" => Router::new()
            .route("/", post(inline))
            .route("/hmac", axum::routing::get(inline_hmac_times)),
        "github" => app.layer(
            tower::ServiceBuilder::new()
                .map_response(|response: Response<_>| response.map(Body::new))
                .layer(tower_github_webhook::ValidateGitHubWebhookLayer::new(
                    SECRET,
                )),
        ),
        "pass" => app.layer(
            tower::ServiceBuilder::new()
                .map_request(|request: Request| request.map(Passed))
                .map_response(|response: Response| response.map(Passed)),
        ),
        // The layer around the whole router, not inside it: axum makes no route of its own
        // for it, and boxes only the body it hands on and the response body.
        "around" => {
            let around = tower::ServiceBuilder::new()
                .map_response(|response: Response<_>| response.map(Body::new))
                .layer(VerifySignatureLayer::new(SECRET))
                .service(app);
            return run(tower::make::Shared::new(around));
        }
        _ => {
            eprintln!(
                "LOAD_SERVER: plain, layer, around, naive, inline, unbounded, github or pass"
            );
            return ExitCode::FAILURE;
        }
    };
    run(app.into_make_service())
}

/// Serves what `make` makes on a free port (printed on stdout) until the driver goes away.
fn run<M, S>(make: M) -> ExitCode
where
    M: for<'a> tower::Service<
            axum::serve::IncomingStream<'a, tokio::net::TcpListener>,
            Error = std::convert::Infallible,
            Response = S,
        > + Send
        + 'static,
    for<'a> <M as tower::Service<axum::serve::IncomingStream<'a, tokio::net::TcpListener>>>::Future:
        Send,
    S: tower::Service<Request, Response = Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send,
{
    server::exit_with_driver();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        println!("{port}");
        axum::serve(listener, make).await.expect("serve");
    });
    ExitCode::SUCCESS
}

/// A body handed on as it is, under a type of its own: what the `pass` server's layer does,
/// the least any layer that reads the body (and so hands the inner service another body, and
/// wraps the response's) costs in an axum `Router`, which boxes both.
struct Passed(Body);

impl http_body::Body for Passed {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        std::pin::Pin::new(&mut self.0).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.0.size_hint()
    }
}

/// The handler of all three: takes the body as `Bytes`, answers 200.
async fn handler(body: Bytes) -> StatusCode {
    black_box(body.len());
    StatusCode::OK
}

/// No middleware: the handler reads the body as the `Bytes` extractor does (`to_bytes`)
/// and verifies it with the HMAC keyed once. Its added CPU is what verifying costs inside
/// this server under this load, with nothing else: the floor for any verifier. It also
/// times its HMAC, and `GET /hmac` answers `count nanoseconds` since the last call.
async fn inline(request: Request) -> StatusCode {
    let (parts, body) = request.into_parts();
    let mut tag = [0; 32];
    let decoded = parts
        .headers
        .get(SIGNATURE_HEADER)
        .is_some_and(|value| hex::decode_to_slice(value.as_bytes(), &mut tag).is_ok());
    let Ok(body) = axum::body::to_bytes(body, 2 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE;
    };
    let start = Instant::now();
    let mut mac = HMAC.with(Clone::clone);
    mac.update(&body);
    let verified = mac.verify_slice(&tag).is_ok();
    let elapsed = start.elapsed().as_nanos() as u64;
    HMAC_NANOS.fetch_add(elapsed, Ordering::Relaxed);
    HMAC_COUNT.fetch_add(1, Ordering::Relaxed);
    if decoded && verified {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}

static HMAC_NANOS: AtomicU64 = AtomicU64::new(0);
static HMAC_COUNT: AtomicU64 = AtomicU64::new(0);

async fn inline_hmac_times() -> String {
    let count = HMAC_COUNT.swap(0, Ordering::Relaxed);
    let nanos = HMAC_NANOS.swap(0, Ordering::Relaxed);
    format!("{count} {nanos}")
}

thread_local! {
    static HMAC: Hmac<Sha256> = keyed();
}

/// What one writes without the crate: collect, verify, rebuild.
async fn naive(request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Some(tag) = parts
        .headers
        .get(SIGNATURE_HEADER)
        .and_then(|value| hex::decode(value.as_bytes()).ok())
    else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    let mut mac = keyed();
    mac.update(&bytes);
    if mac.verify_slice(&tag).is_err() {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Prints `size nanoseconds` per line: the median time of one verification (keyed state
/// cloned, body hashed, tag compared in constant time) over a body of each size.
fn hmac_times(sizes: &[usize]) {
    let key = keyed();
    for &size in sizes {
        let body = body(size);
        let mut mac = key.clone();
        mac.update(&body);
        let tag = mac.finalize().into_bytes();
        let batch = ((4 << 20) / size).clamp(8, 16384);
        let mut times: Vec<f64> = (0..16)
            .map(|_| {
                let start = Instant::now();
                for _ in 0..batch {
                    let mut mac = key.clone();
                    mac.update(black_box(&body));
                    black_box(mac.verify_slice(&tag).is_ok());
                }
                start.elapsed().as_nanos() as f64 / batch as f64
            })
            .collect();
        times.remove(0);
        println!("{size} {:.1}", median(&mut times));
    }
}

// ---------------------------------------------------------------------------------------
// The driver

struct Settings {
    duration: u64,
    warmup: u64,
    rounds: usize,
    connections: usize,
    sizes: Vec<usize>,
    server_cpu: String,
    client_cpu: String,
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    env::var(name)
        .ok()
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(default)
}

fn parse_list(list: &str) -> Vec<usize> {
    list.split(',')
        .filter_map(|size| size.trim().parse().ok())
        .collect()
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

struct Server {
    mode: &'static str,
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One wrk run against one server.
struct Run {
    requests: f64,
    per_second: f64,
    /// Server CPU seconds per request.
    cpu: f64,
}

fn drive() -> Result<(), String> {
    let settings = Settings {
        duration: env_or("LOAD_DURATION", 5),
        warmup: env_or("LOAD_WARMUP", 1),
        rounds: env_or("LOAD_ROUNDS", 3).max(1),
        connections: env_or("LOAD_CONNECTIONS", 32),
        sizes: parse_list(&env::var("LOAD_SIZES").unwrap_or_else(|_| "1024,65536".into())),
        server_cpu: env_or("LOAD_SERVER_CPU", "0".to_owned()),
        client_cpu: env_or("LOAD_CLIENT_CPU", "1".to_owned()),
    };
    ensure_wrk()?;
    let pin = has("taskset");
    if !pin {
        eprintln!("load: taskset not found, running unpinned");
    }
    let ticks = clock_ticks();
    let exe = env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let dir = env::temp_dir().join(format!("authgear-webhook-load-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let scripts = settings
        .sizes
        .iter()
        .map(|&size| write_script(&dir, size))
        .collect::<Result<Vec<_>, _>>()?;

    let servers = MODES
        .iter()
        .map(|&mode| start_server(&exe, mode, &settings, pin))
        .collect::<Result<Vec<_>, _>>()?;
    for server in &servers {
        for &size in &settings.sizes {
            check_server(server, size)?;
        }
    }
    println!(
        "load: {} rounds x {} sizes x {} servers, {} s each (+{} s warm-up), {} connections, \
         server on CPU {}, wrk on CPU {}",
        settings.rounds,
        settings.sizes.len(),
        MODES.len(),
        settings.duration,
        settings.warmup,
        settings.connections,
        settings.server_cpu,
        settings.client_cpu,
    );
    if settings.warmup > 0 {
        for (script, _) in scripts.iter().zip(&settings.sizes) {
            for server in &servers {
                wrk(&settings, settings.warmup, server, script, pin, ticks)?;
            }
        }
    }

    // runs[size][mode][round]
    let mut runs: Vec<Vec<Vec<Run>>> = settings
        .sizes
        .iter()
        .map(|_| MODES.iter().map(|_| Vec::new()).collect())
        .collect();
    let mut hmac: Vec<Vec<f64>> = settings.sizes.iter().map(|_| Vec::new()).collect();
    let mut in_server = hmac.clone();
    for round in 0..settings.rounds {
        for (index, time) in measure_hmac(&exe, &settings, pin)?.into_iter().enumerate() {
            hmac[index].push(time);
        }
        for (index, script) in scripts.iter().enumerate() {
            for turn in 0..servers.len() {
                let mode = (turn + round) % servers.len();
                let server = &servers[mode];
                if server.mode == "inline" {
                    inline_hmac(server)?;
                }
                let run = wrk(&settings, settings.duration, server, script, pin, ticks)?;
                if server.mode == "inline" {
                    in_server[index].push(inline_hmac(server)?);
                }
                eprintln!(
                    "round {} {:>6} B {:>5}: {:>8.0} req/s, {:>6.2} us CPU/req ({} requests)",
                    round + 1,
                    settings.sizes[index],
                    MODES[mode],
                    run.per_second,
                    run.cpu * 1e6,
                    run.requests,
                );
                runs[index][mode].push(run);
            }
        }
    }
    drop(servers);
    let _ = fs::remove_dir_all(&dir);
    report(&settings, &runs, &mut hmac, &mut in_server);
    Ok(())
}

fn report(
    settings: &Settings,
    runs: &[Vec<Vec<Run>>],
    hmac: &mut [Vec<f64>],
    in_server: &mut [Vec<f64>],
) {
    println!(
        "\n| body | server | req/s | vs plain | server CPU us/req | added us/req | added / HMAC alone | added / inline |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let column = |runs: &[Run], value: &dyn Fn(&Run) -> f64| {
        median(&mut runs.iter().map(value).collect::<Vec<_>>())
    };
    // Per round (side by side), then the median over the rounds.
    let paired = |these: &[Run], plain: &[Run], value: &dyn Fn(&Run, &Run) -> f64| {
        median(
            &mut these
                .iter()
                .zip(plain)
                .map(|(r, p)| value(r, p))
                .collect::<Vec<_>>(),
        )
    };
    for (index, &size) in settings.sizes.iter().enumerate() {
        let hmac_us = median(&mut hmac[index]) / 1000.0;
        let plain = &runs[index][0];
        let plain_cpu = column(plain, &|r| r.cpu * 1e6);
        let added = |mode: usize| paired(&runs[index][mode], plain, &|r, p| (r.cpu - p.cpu) * 1e6);
        let index_of = |name: &str| MODES.iter().position(|m| *m == name).expect("a mode");
        let inline = added(index_of("inline"));
        for (mode, name) in MODES.iter().enumerate() {
            let these = &runs[index][mode];
            let per_second = column(these, &|r| r.per_second);
            let cpu = column(these, &|r| r.cpu * 1e6);
            if mode == 0 {
                println!("| {size} B | {name} | {per_second:.0} | 1 | {cpu:.2} | | | |");
                continue;
            }
            let vs_plain = paired(these, plain, &|r, p| r.per_second / p.per_second);
            let added = added(mode);
            println!(
                "| {size} B | {name} | {per_second:.0} | {vs_plain:.3}x | {cpu:.2} | {added:.2} | {:.2}x | {:.2}x |",
                added / hmac_us,
                added / inline,
            );
        }
        let layer_vs = |other: &str| {
            paired(
                &runs[index][index_of("layer")],
                &runs[index][index_of(other)],
                &|r, p| r.per_second / p.per_second,
            )
        };
        println!(
            "| {size} B | layer req/s: {:.3}x inline's, {:.3}x github's, {:.3}x unbounded's, {:.3}x pass's | | | | | | |",
            layer_vs("inline"),
            layer_vs("github"),
            layer_vs("unbounded"),
            layer_vs("pass"),
        );
        println!(
            "| {size} B | HMAC alone: {hmac_us:.2} us, timed in the inline server: {:.2} us | cap {:.3}x | | | | | |",
            median(&mut in_server[index]) / 1000.0,
            plain_cpu / (plain_cpu + hmac_us)
        );
    }
    println!(
        "\nadded: server CPU per request minus plain's (per round, median). HMAC alone: \
         HMAC-SHA256 over the body, keyed state cloned, tag compared, timed on the server's \
         core. inline: the added CPU of the server whose handler verifies (the HMAC's cost \
         inside the server). vs plain: req/s ratio per round, median; cap: what the HMAC \
         alone allows, plain CPU / (plain CPU + HMAC)."
    );
}

fn has(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// wrk is Debian's package `wrk`; install it when missing and running as root.
fn ensure_wrk() -> Result<(), String> {
    if has("wrk") {
        return Ok(());
    }
    eprintln!("load: wrk not found, installing Debian's package");
    let install = || {
        Command::new("apt-get")
            .args(["install", "-y", "-qq", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .is_ok_and(|status| status.success())
    };
    if !install() {
        let _ = Command::new("apt-get").args(["update", "-qq"]).status();
        install();
    }
    if has("wrk") {
        Ok(())
    } else {
        Err("wrk is missing: apt-get install wrk".into())
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok()?.trim().parse().ok())
        .unwrap_or(100.0)
}

fn pinned(cpu: &str, program: &Path, pin: bool) -> Command {
    if pin {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(cpu).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn start_server(
    exe: &Path,
    mode: &'static str,
    settings: &Settings,
    pin: bool,
) -> Result<Server, String> {
    // taskset execs the server: the child's PID is the server's.
    let mut child = pinned(&settings.server_cpu, exe, pin)
        .env("LOAD_SERVER", mode)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("start {mode} server: {e}"))?;
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| format!("{mode} server: {e}"))?;
    }
    // Built first, so that the child is killed if it printed no port.
    let mut server = Server {
        mode,
        port: 0,
        child,
    };
    server.port = line
        .trim()
        .parse()
        .map_err(|_| format!("{mode} server did not print its port"))?;
    Ok(server)
}

/// One request with the right signature (200) and, for the verifying servers, one with a
/// wrong one (401): the runs measure what they claim to.
fn check_server(server: &Server, size: usize) -> Result<(), String> {
    let body = body(size);
    let good = sign(SECRET, &body);
    let bad = sign("not-the-secret", &body);
    let mut cases = vec![(good, "200")];
    if !matches!(server.mode, "plain" | "pass") {
        cases.push((bad, "401"));
    }
    for (signature, want) in cases {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port))
            .map_err(|e| format!("{} server: {e}", server.mode))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| e.to_string())?;
        let head = format!(
            "POST / HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
             content-length: {}\r\n{SIGNATURE_HEADER}: {signature}\r\n\
             {GITHUB_HEADER}: sha256={signature}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&body))
            .map_err(|e| format!("{} server: {e}", server.mode))?;
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let status = String::from_utf8_lossy(&answer);
        if !status.starts_with(&format!("HTTP/1.1 {want}")) {
            return Err(format!(
                "{} server, {size} B: expected {want}, got {:?}",
                server.mode,
                status.lines().next().unwrap_or("nothing")
            ));
        }
    }
    Ok(())
}

/// A wrk script sending the signed body of `size` bytes.
fn write_script(dir: &Path, size: usize) -> Result<PathBuf, String> {
    let body = body(size);
    let signature = sign(SECRET, &body);
    let text = String::from_utf8(body).map_err(|e| e.to_string())?;
    let script = format!(
        "wrk.method = \"POST\"\n\
         wrk.headers[\"Content-Type\"] = \"application/json\"\n\
         wrk.headers[\"{SIGNATURE_HEADER}\"] = \"{signature}\"\n\
         wrk.headers[\"{GITHUB_HEADER}\"] = \"sha256={signature}\"\n\
         wrk.body = [==[{text}]==]\n"
    );
    let path = dir.join(format!("post-{size}.lua"));
    fs::write(&path, script).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

/// `GET /hmac` on the inline server: nanoseconds per HMAC since the last call.
fn inline_hmac(server: &Server) -> Result<f64, String> {
    let failed = |e: std::io::Error| format!("{} server: {e}", server.mode);
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).map_err(failed)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(failed)?;
    stream
        .write_all(b"GET /hmac HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
        .map_err(failed)?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).map_err(failed)?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    let mut numbers = body.split_whitespace().map(str::parse::<f64>);
    match (numbers.next(), numbers.next()) {
        (Some(Ok(count)), Some(Ok(nanos))) => Ok(nanos / count.max(1.0)),
        _ => Err(format!("inline server: GET /hmac answered {answer:?}")),
    }
}

/// The server's CPU time so far (all threads), in clock ticks.
fn cpu_ticks(pid: u32) -> Result<u64, String> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).map_err(|e| e.to_string())?;
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime); `fields` starts at field 3.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    match (field(14), field(15)) {
        (Some(user), Some(system)) => Ok(user + system),
        _ => Err(format!("unreadable /proc/{pid}/stat")),
    }
}

fn wrk(
    settings: &Settings,
    seconds: u64,
    server: &Server,
    script: &Path,
    pin: bool,
    ticks: f64,
) -> Result<Run, String> {
    let pid = server.child.id();
    let before = cpu_ticks(pid)?;
    let output = pinned(&settings.client_cpu, Path::new("wrk"), pin)
        .arg("-t1")
        .arg(format!("-c{}", settings.connections))
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{}/", server.port))
        .output()
        .map_err(|e| format!("wrk: {e}"))?;
    let after = cpu_ticks(pid)?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!("wrk failed: {text}"));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
    {
        return Err(format!("{} server: {}", server.mode, line.trim()));
    }
    let requests = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next()?.parse::<f64>().ok())
        .ok_or_else(|| format!("no request count in wrk's output: {text}"))?;
    let per_second = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .ok_or_else(|| format!("no Requests/sec in wrk's output: {text}"))?;
    let cpu = (after - before) as f64 / ticks / requests.max(1.0);
    Ok(Run {
        requests,
        per_second,
        cpu,
    })
}

/// Runs the HMAC timing on the server's core; one median per size, in nanoseconds.
fn measure_hmac(exe: &Path, settings: &Settings, pin: bool) -> Result<Vec<f64>, String> {
    let sizes: Vec<String> = settings.sizes.iter().map(ToString::to_string).collect();
    let output = pinned(&settings.server_cpu, exe, pin)
        .env("LOAD_HMAC", sizes.join(","))
        .output()
        .map_err(|e| format!("HMAC timing: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    let times: Vec<f64> = text
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1)?.parse().ok())
        .collect();
    if times.len() == settings.sizes.len() {
        Ok(times)
    } else {
        Err(format!("HMAC timing printed {text:?}"))
    }
}
