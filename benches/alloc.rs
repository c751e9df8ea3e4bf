//! Allocations per request added by the layer, counted by a counting global allocator
//! (stats_alloc): the real layer against the same inner service without it, for bodies in
//! one frame and in 64 frames. Checks that a body in one frame is not copied: the bytes the
//! layer allocates per request do not depend on the body's size.
//!
//! ```sh
//! cargo bench -p authgear-webhook-benches --bench alloc
//! ```

use std::{alloc::System, process::ExitCode};

use authgear_webhook::VerifySignatureLayer;
use axum::{Router, body::Body, routing::post};
use bytes::Bytes;
use common::{Signed, inner, layered, oneshot};
use http::{Request, Response, StatusCode};
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};
use tower::Service;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const SIZES: [usize; 5] = [256, 1 << 10, 4 << 10, 64 << 10, 1 << 20];
const REQUESTS: usize = 1000;

/// As [`per_request`], for a service taking another body: requests are converted by `map`
/// before counting starts.
fn per_request_mapped<S, R, B>(
    service: &mut S,
    signed: &Signed,
    frames: usize,
    map: impl Fn(Request<common::Frames>) -> R,
) -> (f64, f64)
where
    S: Service<R, Response = Response<B>, Error = std::convert::Infallible>,
{
    let requests: Vec<_> = (0..REQUESTS).map(|_| map(signed.request(frames))).collect();
    count(|| {
        for request in requests {
            assert_eq!(oneshot(service, request), StatusCode::OK);
        }
    })
}

/// Allocations (reallocations included) and bytes allocated per request by `run`, which
/// handles `REQUESTS` requests.
fn count(run: impl FnOnce()) -> (f64, f64) {
    let region = Region::new(GLOBAL);
    run();
    let stats = region.change();
    let count = stats.allocations + stats.reallocations;
    let bytes = stats.bytes_allocated as f64 + stats.bytes_reallocated.max(0) as f64;
    (count as f64 / REQUESTS as f64, bytes / REQUESTS as f64)
}

/// Allocations (reallocations included) and bytes allocated per request while `service`
/// handles `REQUESTS` requests, built before counting starts and dropped by the service.
fn per_request<S, B>(service: &mut S, signed: &Signed, frames: usize) -> (f64, f64)
where
    S: Service<Request<common::Frames>, Response = Response<B>, Error = std::convert::Infallible>,
{
    per_request_mapped(service, signed, frames, |request| request)
}

/// The same in an axum `Router` (handler taking `Bytes`), as served: what the layer adds
/// there, axum's own boxing of the inner body and of the response future included.
fn axum_router() {
    async fn handler(body: Bytes) -> StatusCode {
        std::hint::black_box(body.len());
        StatusCode::OK
    }
    let plain = Router::new().route("/", post(handler));
    let layered = plain
        .clone()
        .layer(VerifySignatureLayer::new(common::SECRET));
    println!("\naxum Router, handler taking Bytes; added = layer - plain");
    println!(
        "| body | frames | plain allocs | bytes | layer allocs | bytes | added allocs | added bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for size in [1 << 10, 64 << 10] {
        let signed = Signed::new(size);
        for frames in [1, 64] {
            let axum_request = |request: Request<common::Frames>| request.map(Body::new);
            let (plain_count, plain_bytes) =
                per_request_mapped(&mut plain.clone(), &signed, frames, axum_request);
            let (layer_count, layer_bytes) =
                per_request_mapped(&mut layered.clone(), &signed, frames, axum_request);
            println!(
                "| {size} | {frames} | {plain_count:.1} | {plain_bytes:.0} | {layer_count:.1} | {layer_bytes:.0} | {:.1} | {:.0} |",
                layer_count - plain_count,
                layer_bytes - plain_bytes,
            );
        }
    }
}

fn main() -> ExitCode {
    // `cargo test --benches` runs bench binaries without `--bench`: nothing to check there.
    if !std::env::args().any(|arg| arg == "--bench") {
        return ExitCode::SUCCESS;
    }
    println!("per request, {REQUESTS} requests each; added = layer - pass-through");
    println!(
        "| body | frames | pass-through allocs | bytes | layer allocs | bytes | added allocs | added bytes |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut one_frame_added = Vec::new();
    for size in SIZES {
        let signed = Signed::new(size);
        for frames in [1, 64] {
            let (pass_count, pass_bytes) = per_request(&mut inner(), &signed, frames);
            let (layer_count, layer_bytes) = per_request(&mut layered(), &signed, frames);
            let (added_count, added_bytes) = (layer_count - pass_count, layer_bytes - pass_bytes);
            println!(
                "| {size} | {frames} | {pass_count:.1} | {pass_bytes:.0} | {layer_count:.1} | {layer_bytes:.0} | {added_count:.1} | {added_bytes:.0} |"
            );
            if frames == 1 {
                one_frame_added.push(added_bytes);
            }
        }
    }
    axum_router();
    let constant = one_frame_added.windows(2).all(|w| w[0] == w[1]);
    if constant {
        println!(
            "one frame: the layer allocates {:.0} bytes per request whatever the body size: no body copy",
            one_frame_added[0]
        );
        ExitCode::SUCCESS
    } else {
        println!("one frame: bytes allocated per request grow with the body: the body is copied");
        ExitCode::FAILURE
    }
}
