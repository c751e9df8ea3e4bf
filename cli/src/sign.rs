//! `authgear-webhook sign [FILE]`: the signature Authgear would send with a body.

use std::path::{Path, PathBuf};

use crate::Failure;

/// Print the signature of a body (a file, or stdin)
///
/// The lowercase hex of HMAC-SHA256 of the body's bytes under the secret, as Authgear sends
/// it in x-authgear-body-signature.
#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The body, byte for byte (default or `-`: stdin)
    #[arg(value_name = "FILE", default_value = "-")]
    file: PathBuf,
}

pub(crate) fn run(args: Args, secret_file: Option<&Path>) -> Result<(), Failure> {
    let secret = crate::secret(secret_file)?;
    let body = crate::read(&args.file)?;
    println!("{}", authgear_webhook::sign(&secret, &body));
    Ok(())
}
