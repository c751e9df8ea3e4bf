//! `authgear-webhook verify --signature HEX [FILE]`: whether a body carries a valid
//! signature, checked by the library's [`VerifySignatureLayer`], exactly as a receiver
//! using it would.

use std::{
    convert::Infallible,
    future::{Ready, poll_fn, ready},
    path::{Path, PathBuf},
    task::{Context, Poll},
};

use authgear_webhook::{Rejection, SIGNATURE_HEADER, VerifiedBody, VerifySignatureLayer};
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{Empty, Full};
use tower_layer::Layer;
use tower_service::Service;

use crate::Failure;

/// Check a body's signature (a file, or stdin)
///
/// Checks it as the library's verifying layer does: exit 0 if it matches the body under the
/// secret, 1 if not, with one line saying why (2 if the command could not run).
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The signature, as in x-authgear-body-signature (64 hex characters)
    #[arg(long, value_name = "HEX")]
    signature: String,

    /// The body, byte for byte (default or `-`: stdin)
    #[arg(value_name = "FILE", default_value = "-")]
    file: PathBuf,
}

pub(crate) async fn run(args: Args, secret_file: Option<&Path>) -> Result<(), Failure> {
    let secret = crate::secret(secret_file)?;
    let body = crate::read(&args.file)?;
    let request = Request::post("/")
        .header(SIGNATURE_HEADER, &args.signature)
        .body(Full::new(Bytes::from(body)))
        .map_err(|_| Failure::Failed("signature refused: not a valid header value".to_owned()))?;
    // No size limit here: the file is already in memory.
    let mut service = VerifySignatureLayer::new(secret)
        .body_limit(usize::MAX)
        .layer(Reached);
    let ready = poll_fn(|cx| Service::<Request<Full<Bytes>>>::poll_ready(&mut service, cx)).await;
    let response = match ready {
        Ok(()) => service.call(request).await,
        Err(infallible) => match infallible {},
    };
    let response = match response {
        Ok(response) => response,
        Err(infallible) => match infallible {},
    };
    match response.extensions().get::<Rejection>() {
        None => {
            println!("valid signature");
            Ok(())
        }
        Some(rejection) => Err(Failure::Failed(format!(
            "signature refused ({} {}): {rejection}",
            rejection.status().as_u16(),
            rejection.status().canonical_reason().unwrap_or(""),
        ))),
    }
}

/// The inner service: reached only by a verified request.
#[derive(Debug, Clone, Copy)]
struct Reached;

impl Service<Request<VerifiedBody>> for Reached {
    type Response = Response<Empty<Bytes>>;
    type Error = Infallible;
    type Future = Ready<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<VerifiedBody>) -> Self::Future {
        ready(Ok(Response::new(Empty::new())))
    }
}
