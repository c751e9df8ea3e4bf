//! Verification throughput, in-process: the real layer (`VerifySignatureLayer::new(..)
//! .layer(inner)`, inner service dropping the body) against a plain `Hmac<Sha256>` over one
//! contiguous slice, and against the same inner service without the layer. Bodies of
//! 256 B, 4 KiB, 64 KiB and 1 MiB, arriving in 1 frame and in 64 frames.
//!
//! ```sh
//! cargo bench -p authgear-webhook-benches --bench verify                 # criterion, then the side-by-side table
//! RATIOS=0 cargo bench -p authgear-webhook-benches --bench verify        # criterion only
//! RATIOS_ONLY=1 cargo bench -p authgear-webhook-benches --bench verify   # the side-by-side table only
//! ```
//!
//! A second table sets the layer with its defaults against the same layer with the body
//! budget and the body deadline off, side by side: what the flood protection costs.
//!
//! Criterion runs one function after the other; on a shared machine their figures drift.
//! The table at the end times the three side by side, in interleaved batches, and gives the
//! ratios from the medians: the layer against plain HMAC, and what the layer adds on top of
//! the same inner service (layer minus pass-through) against plain HMAC. Results and how to
//! read them: BENCHMARKS.md.

use std::{
    env,
    hint::black_box,
    pin::Pin,
    task::{Context, Poll, Waker},
    time::{Duration, Instant},
};

use common::{SECRET, Signed, inner, layered, oneshot};
use criterion::{BatchSize, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use http::StatusCode;
use http_body::Body;
use sha2::Sha256;

const SIZES: [usize; 4] = [256, 4 << 10, 64 << 10, 1 << 20];
const FRAMES: [usize; 2] = [1, 64];

/// The reference: HMAC-SHA256 keyed once, cloned per request, over one contiguous slice,
/// and checked in constant time (what any verifier must do at least).
fn plain_hmac(key: &Hmac<Sha256>, body: &[u8], tag: &[u8]) -> bool {
    let mut mac = key.clone();
    mac.update(body);
    mac.verify_slice(tag).is_ok()
}

fn keyed() -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("HMAC takes any key")
}

fn tag(signed: &Signed) -> Vec<u8> {
    let mut mac = keyed();
    mac.update(&signed.body);
    mac.finalize().into_bytes().to_vec()
}

fn label(size: usize) -> String {
    match size {
        s if s >= 1 << 20 => format!("{}MiB", s >> 20),
        s if s >= 1 << 10 => format!("{}KiB", s >> 10),
        s => format!("{s}B"),
    }
}

fn throughput(c: &mut Criterion) {
    let key = keyed();
    for size in SIZES {
        let signed = Signed::new(size);
        let tag = tag(&signed);
        let mut group = c.benchmark_group(format!("verify/{}", label(size)));
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_function("hmac", |b| {
            b.iter(|| plain_hmac(&key, black_box(&signed.body), &tag));
        });
        for frames in FRAMES {
            let mut layer = layered();
            assert_eq!(oneshot(&mut layer, signed.request(frames)), StatusCode::OK);
            let name = match frames {
                1 => "layer/1-frame".to_owned(),
                n => format!("layer/{n}-frames"),
            };
            group.bench_function(name, |b| {
                b.iter_batched(
                    || signed.request(frames),
                    |request| oneshot(&mut layer, request),
                    BatchSize::SmallInput,
                );
            });
        }
        let mut passthrough = inner();
        group.bench_function("passthrough", |b| {
            b.iter_batched(
                || signed.request(1),
                |request| oneshot(&mut passthrough, request),
                BatchSize::SmallInput,
            );
        });
        group.finish();
    }
}

/// Nanoseconds per request of `batch` requests, built before the clock starts.
fn time_layer(signed: &Signed, frames: usize, batch: usize, passthrough: bool) -> f64 {
    let requests: Vec<_> = (0..batch).map(|_| signed.request(frames)).collect();
    let start = Instant::now();
    if passthrough {
        let mut service = inner();
        for request in requests {
            black_box(oneshot(&mut service, request));
        }
    } else {
        let mut service = layered();
        for request in requests {
            black_box(oneshot(&mut service, request));
        }
    }
    start.elapsed().as_nanos() as f64 / batch as f64
}

/// Nanoseconds per request for the pass-through, without the layer, when it reads its body
/// to the end (and drops it) as any handler must: what a body in many frames costs anyway.
fn time_reading(signed: &Signed, frames: usize, batch: usize) -> f64 {
    let requests: Vec<_> = (0..batch).map(|_| signed.request(frames)).collect();
    let mut cx = Context::from_waker(Waker::noop());
    let start = Instant::now();
    for request in requests {
        let mut body = request.into_body();
        while let Poll::Ready(Some(frame)) = Pin::new(&mut body).poll_frame(&mut cx) {
            drop(black_box(frame));
        }
    }
    start.elapsed().as_nanos() as f64 / batch as f64
}

fn time_hmac(key: &Hmac<Sha256>, signed: &Signed, tag: &[u8], batch: usize) -> f64 {
    let start = Instant::now();
    for _ in 0..batch {
        black_box(plain_hmac(key, black_box(&signed.body), tag));
    }
    start.elapsed().as_nanos() as f64 / batch as f64
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The plain HMAC, the layer (1 and 64 frames) and the pass-through, timed in interleaved
/// batches of about 5 ms each, rounds after rounds; medians and their ratios.
fn side_by_side() {
    let rounds: usize = env::var("RATIO_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(41);
    let key = keyed();
    println!("\nside by side, interleaved ({rounds} rounds, medians; ns per request)");
    println!(
        "| body | hmac ns | hmac GB/s | layer 1 frame ns | GB/s | ratio | verification ratio | layer 64 frames ns | GB/s | ratio | verification ratio | pass-through ns | reading 64 frames ns |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for size in SIZES {
        let signed = Signed::new(size);
        let tag = tag(&signed);
        let batch = ((4 << 20) / size).clamp(8, 16384);
        let (mut hmac, mut one, mut many, mut pass, mut read) =
            (vec![], vec![], vec![], vec![], vec![]);
        for round in 0..=rounds {
            let h = time_hmac(&key, &signed, &tag, batch);
            let o = time_layer(&signed, 1, batch, false);
            let m = time_layer(&signed, 64, batch, false);
            let p = time_layer(&signed, 1, batch, true);
            let r = time_reading(&signed, 64, batch);
            // Round 0 warms the caches and the allocator up.
            if round > 0 {
                hmac.push(h);
                one.push(o);
                many.push(m);
                pass.push(p);
                read.push(r);
            }
        }
        let (h, o, m, p, r) = (
            median(hmac),
            median(one),
            median(many),
            median(pass),
            median(read),
        );
        let gbs = |ns: f64| size as f64 / ns;
        println!(
            "| {} | {h:.0} | {:.2} | {o:.0} | {:.2} | {:.3}x | {:.3}x | {m:.0} | {:.2} | {:.3}x | {:.3}x | {p:.0} | {r:.0} |",
            label(size),
            gbs(h),
            gbs(o),
            h / o,
            h / (o - p),
            gbs(m),
            h / m,
            h / (m - r),
        );
    }
    println!("ratio: layer throughput / plain HMAC throughput (1.0 = at the HMAC's speed)");
    println!(
        "verification ratio: plain HMAC / what the layer adds to the same inner service \
         (hmac ns / (layer ns - pass-through ns)); for 64 frames, against the same \
         service without the layer reading the 64 frames, as any handler must: hmac ns / (layer ns - reading ns)"
    );
}

/// The layer with its defaults (body budget and deadline on) and with both off, timed in
/// interleaved batches; medians and their ratio.
fn bounds_side_by_side() {
    use authgear_webhook::VerifySignatureLayer;
    use tower::Layer;
    let rounds: usize = env::var("RATIO_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(41);
    println!(
        "\nbody budget and deadline, on (default) and off, interleaved ({rounds} rounds, medians)"
    );
    println!("| body | frames | on ns | off ns | on / off |");
    println!("|---|---|---|---|---|");
    for size in [256, 4 << 10, 64 << 10] {
        let signed = Signed::new(size);
        let batch = ((4 << 20) / size).clamp(8, 16384);
        for frames in FRAMES {
            let time = |off: bool| {
                let requests: Vec<_> = (0..batch).map(|_| signed.request(frames)).collect();
                let mut layer = VerifySignatureLayer::new(SECRET);
                if off {
                    layer = layer.body_budget(None).body_deadline(None);
                }
                let mut service = layer.layer(inner());
                let start = Instant::now();
                for request in requests {
                    black_box(oneshot(&mut service, request));
                }
                start.elapsed().as_nanos() as f64 / batch as f64
            };
            let (mut on, mut off) = (vec![], vec![]);
            for round in 0..=rounds {
                let (a, b) = (time(false), time(true));
                if round > 0 {
                    on.push(a);
                    off.push(b);
                }
            }
            let (on, off) = (median(on), median(off));
            println!(
                "| {} | {frames} | {on:.0} | {off:.0} | {:.3}x |",
                label(size),
                on / off
            );
        }
    }
}

fn main() {
    let bench_mode = env::args().any(|arg| arg == "--bench");
    if env::var("RATIOS_ONLY").as_deref() != Ok("1") {
        let mut criterion = Criterion::default()
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3))
            .configure_from_args();
        throughput(&mut criterion);
        criterion.final_summary();
    }
    // `cargo test --benches` runs each function once without `--bench`: no table then.
    if bench_mode && env::var("RATIOS").as_deref() != Ok("0") {
        side_by_side();
        bounds_side_by_side();
    }
}
