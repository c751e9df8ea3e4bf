//! `authgear-webhook send URL TYPE|FILE`: a signed delivery, sent the way Authgear sends it,
//! and whether Authgear would accept the answer (like `stripe trigger`).
//!
//! With an event type, the example delivery of that type (`events`) with a fresh `id` (and
//! `seq`) and `context.timestamp` set to now, so that replay protection accepts it; the
//! options change the user id, email, id and timestamp. With a file, its bytes as they are
//! (a captured delivery, say), signed; its `type` field says which event it is.
//!
//! `POST` with `Content-Type: application/json` and the signature header, over `http://` or
//! `https://` (rustls; the system's trust roots and `--cacert`); redirects are not followed
//! (Authgear does not follow them). Prints the status and the body of the answer. Succeeds
//! only when Authgear would accept the answer: a 2xx status within the time limit (5 s for a
//! blocking event, 60 s for the others) and, for a blocking event, a JSON body that
//! Authgear's response schema for that event accepts.

use std::{
    collections::hash_map::RandomState,
    hash::BuildHasher,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use authgear_webhook::{SIGNATURE_HEADER, event::is_blocking_type, sign};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnectorBuilder;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use rustls::pki_types::{CertificateDer, pem::PemObject};
use serde_json::Value;

use crate::{Failure, chain, events};

/// Send a signed delivery to a receiver, as Authgear would
///
/// Prints the status and the body of the answer, and succeeds only if Authgear would accept
/// it: a 2xx status within the time limit and, for a blocking event, a JSON body that
/// Authgear's response schema for that event accepts. Redirects are not followed.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    authgear-webhook send http://127.0.0.1:9999/ user.pre_create --email new@example.com\n  \
    authgear-webhook send https://hooks.example.com/authgear delivery.json\n\
    Exit codes: 0 Authgear would accept the answer, 1 it would not (or no answer), 2 bad \
    arguments.")]
pub(crate) struct Args {
    /// The receiver: an http:// or https:// URL
    url: String,

    /// An event type (`authgear-webhook events` lists them): its example delivery, fresh;
    /// or a file (ending in .json, or any existing file): its bytes, as they are
    #[arg(value_name = "TYPE|FILE")]
    event: String,

    /// The user's id in the generated delivery (the user, its identities, the context)
    #[arg(long, value_name = "ID")]
    user_id: Option<String>,

    /// The user's email in the generated delivery (standard attributes, email login ids)
    #[arg(long, value_name = "EMAIL")]
    email: Option<String>,

    /// The event id of the generated delivery (default: fresh, 16 hex digits, like Authgear)
    #[arg(long, value_name = "ID")]
    id: Option<String>,

    /// The generated delivery's context.timestamp, in Unix seconds (default: now)
    #[arg(long, value_name = "SECONDS", allow_negative_numbers = true)]
    timestamp: Option<i64>,

    /// An extra header, `NAME: VALUE` (repeatable); replaces the default one of that name
    /// (Content-Type, the signature header)
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    headers: Vec<String>,

    /// Seconds to wait for the whole answer (default: Authgear's, 5 for a blocking event,
    /// 60 for the others)
    #[arg(long, value_name = "SECONDS")]
    timeout: Option<u64>,

    /// Also trust the CA certificates in this PEM file for https:// (repeatable)
    #[arg(long, value_name = "FILE")]
    cacert: Vec<PathBuf>,
}

/// The most of an answer that is read (and printed): real answers are a few hundred bytes.
/// Authgear ignores the answer to a non-blocking event, so a longer one is fine there.
const ANSWER_LIMIT: usize = 1024 * 1024;

pub(crate) async fn run(args: Args, secret_file: Option<&Path>) -> Result<(), Failure> {
    let input = |reason: String| Failure::Input(reason);
    let url: Uri = args
        .url
        .parse()
        .map_err(|error| input(format!("URL {}: {error}", args.url)))?;
    if !matches!(url.scheme_str(), Some("http" | "https")) || url.host().is_none() {
        return Err(input(format!(
            "URL {url}: only http:// and https:// URLs with a host"
        )));
    }
    let (event_type, body) = if args.event.ends_with(".json") || Path::new(&args.event).is_file() {
        if args.user_id.is_some() || args.email.is_some() || args.id.is_some() {
            return Err(input(format!(
                "{} is sent byte for byte: --user-id, --email and --id change generated \
                 deliveries only",
                args.event
            )));
        }
        if args.timestamp.is_some() {
            return Err(input(format!(
                "{} is sent byte for byte: --timestamp changes generated deliveries only",
                args.event
            )));
        }
        from_file(&args.event)?
    } else {
        (args.event.clone(), generated(&args)?)
    };
    let secret = crate::secret(secret_file)?;
    let blocking = is_blocking_type(&event_type);

    let mut request = Request::post(url)
        .header(header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, sign(&secret, &body))
        .body(Full::new(Bytes::from(body)))
        .map_err(|error| input(format!("cannot build the request: {error}")))?;
    add_headers(request.headers_mut(), &args.headers)?;
    let client = Client::builder(TokioExecutor::new()).build(
        HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(&args.cacert)?)
            .https_or_http()
            .enable_all_versions()
            .build(),
    );

    let timeout = Duration::from_secs(args.timeout.unwrap_or(if blocking { 5 } else { 60 }));
    let exchange = async {
        let response = client
            .request(request)
            .await
            .map_err(|error| format!("no answer: {}", chain(&error)))?;
        let status = response.status();
        // At most ANSWER_LIMIT bytes; the rest is not read.
        let (mut body, mut answer) = (response.into_body(), Vec::new());
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|error| format!("answer cut off: {}", chain(&error)))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if answer.len() + data.len() > ANSWER_LIMIT {
                answer.extend_from_slice(&data[..ANSWER_LIMIT - answer.len()]);
                return Ok((status, answer, true));
            }
            answer.extend_from_slice(&data);
        }
        Ok::<_, String>((status, answer, false))
    };
    let (status, body, truncated) = tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| Failure::Failed(format!("no answer within {} s", timeout.as_secs())))?
        .map_err(Failure::Failed)?;

    println!("{status}");
    println!("{}", String::from_utf8_lossy(&body));
    if !status.is_success() {
        return Err(Failure::Failed(format!("status {status} is not 2xx")));
    }
    if blocking && truncated {
        return Err(Failure::Failed(format!(
            "answer longer than {ANSWER_LIMIT} bytes: not checked against the schema"
        )));
    }
    if blocking {
        check_answer(&event_type, &body).map_err(Failure::Failed)?;
    }
    Ok(())
}

/// The example delivery of `args.event`, with a fresh `id` (and `seq`) and timestamp, and
/// the options applied.
fn generated(args: &Args) -> Result<Vec<u8>, Failure> {
    let input = |reason: String| Failure::Input(reason);
    let event_type = &args.event;
    let fixture = events::example(event_type).map_err(input)?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| input("the clock is before 1970".to_owned()))?;
    // Authgear's ids are the `seq` in 16 hex digits; 48 random bits make it fresh.
    let seq = RandomState::new().hash_one(now) >> 16;
    let mut event: Value =
        serde_json::from_str(fixture).map_err(|error| input(error.to_string()))?;
    event["id"] = args
        .id
        .clone()
        .unwrap_or_else(|| format!("{seq:016x}"))
        .into();
    event["seq"] = seq.into();
    event["context"]["timestamp"] = match args.timestamp {
        Some(timestamp) => timestamp.into(),
        None => now.as_secs().into(),
    };
    if let Some(user_id) = &args.user_id {
        if !set_user_id(&mut event["payload"], user_id) {
            return Err(input(format!("{event_type} has no user for --user-id")));
        }
        if event["context"]["user_id"].is_string() {
            event["context"]["user_id"] = user_id.clone().into();
        }
    }
    if let Some(email) = &args.email
        && !set_email(&mut event["payload"], email)
    {
        return Err(input(format!("{event_type} has no user email for --email")));
    }
    serde_json::to_vec(&event).map_err(|error| input(error.to_string()))
}

/// Sets the `id` of every `user` object and every `user_id` string under `value`; whether
/// there was any.
fn set_user_id(value: &mut Value, user_id: &str) -> bool {
    let mut found = false;
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                match (key.as_str(), &mut *child) {
                    ("user", Value::Object(user)) if user.contains_key("id") => {
                        user.insert("id".to_owned(), user_id.into());
                        found = true;
                    }
                    ("user_id", Value::String(_)) => {
                        *child = user_id.into();
                        found = true;
                        continue;
                    }
                    _ => {}
                }
                found |= set_user_id(child, user_id);
            }
        }
        Value::Array(items) => {
            for item in items {
                found |= set_user_id(item, user_id);
            }
        }
        _ => {}
    }
    found
}

/// Sets the email in every `standard_attributes` and every email login id's `claims` under
/// `value`; whether there was any.
fn set_email(value: &mut Value, email: &str) -> bool {
    const LOGIN_ID: &str = "https://authgear.com/claims/login_id/";
    let mut found = false;
    match value {
        Value::Object(object) => {
            for (key, child) in object.iter_mut() {
                if let ("standard_attributes" | "claims", Value::Object(fields)) =
                    (key.as_str(), &mut *child)
                {
                    if fields.contains_key("email") {
                        fields.insert("email".to_owned(), email.into());
                        found = true;
                    }
                    let login_id_type = fields.get(&format!("{LOGIN_ID}type"));
                    if login_id_type.and_then(Value::as_str) == Some("email") {
                        for name in ["value", "original_value"] {
                            fields.insert(format!("{LOGIN_ID}{name}"), email.into());
                        }
                    }
                }
                found |= set_email(child, email);
            }
        }
        Value::Array(items) => {
            for item in items {
                found |= set_email(item, email);
            }
        }
        _ => {}
    }
    found
}

/// The bytes of the file at `path` and the event type they say.
fn from_file(path: &str) -> Result<(String, Vec<u8>), Failure> {
    let body = crate::read(Path::new(path))?;
    let event: Value = serde_json::from_slice(&body)
        .map_err(|error| Failure::Input(format!("{path} is not JSON: {error}")))?;
    match event.get("type").and_then(Value::as_str) {
        Some(event_type) => Ok((event_type.to_owned(), body)),
        None => Err(Failure::Input(format!(
            "{path} has no \"type\": not an Authgear delivery"
        ))),
    }
}

/// `headers` with each `NAME: VALUE` of `extra`: the first of a name replaces the default,
/// the next ones are added.
fn add_headers(headers: &mut http::HeaderMap, extra: &[String]) -> Result<(), Failure> {
    let mut replaced = Vec::new();
    for line in extra {
        let invalid = || Failure::Input(format!("header {line:?}: expected NAME: VALUE"));
        let (name, value) = line.split_once(':').ok_or_else(invalid)?;
        let name = HeaderName::try_from(name.trim()).map_err(|_| invalid())?;
        let value = HeaderValue::try_from(value.trim()).map_err(|_| invalid())?;
        if replaced.contains(&name) {
            headers.append(name, value);
        } else {
            headers.insert(name.clone(), value);
            replaced.push(name);
        }
    }
    Ok(())
}

/// rustls with `ring`, trusting the system's roots (and `SSL_CERT_FILE`) and `cacerts`.
pub(crate) fn tls_config(cacerts: &[PathBuf]) -> Result<rustls::ClientConfig, Failure> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable system certificates only matter for https://, where the handshake says so.
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    for path in cacerts {
        let unreadable = |error: &dyn std::fmt::Display| {
            Failure::Input(format!("cannot read {}: {error}", path.display()))
        };
        let certificates = CertificateDer::pem_file_iter(path)
            .map_err(|error| unreadable(&error))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|error| unreadable(&error))?;
        if certificates.is_empty() {
            return Err(unreadable(&"no PEM certificate in it"));
        }
        for certificate in certificates {
            roots.add(certificate).map_err(|error| unreadable(&error))?;
        }
    }
    // rustls 0.23.48 deprecates its `ring` provider (no post-quantum key exchange) to steer
    // users to aws-lc-rs, which needs cmake to install; `ring` stays, as Cargo.toml says,
    // and `cargo install` without `--locked` takes the newest 0.23.
    #[allow(deprecated)]
    let provider = rustls::crypto::ring::default_provider();
    Ok(
        rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_safe_default_protocol_versions()
            .map_err(|error| Failure::Input(format!("TLS: {error}")))?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

/// Whether Authgear would accept `body` as the answer to a blocking `event_type`.
fn check_answer(event_type: &str, body: &[u8]) -> Result<(), String> {
    let answer: Value = serde_json::from_slice(body).map_err(|error| {
        format!("the answer is not JSON ({error}): Authgear fails the operation")
    })?;
    let Some(schema) = events::schema(event_type) else {
        return Err(format!("no response schema for {event_type}"));
    };
    let schema: Value = serde_json::from_str(schema).map_err(|error| error.to_string())?;
    let validator = jsonschema::validator_for(&schema).map_err(|error| error.to_string())?;
    validator.validate(&answer).map_err(|error| {
        let path = error.instance_path().to_string();
        let at = if path.is_empty() {
            String::new()
        } else {
            format!(" at {path}")
        };
        format!("the answer does not match Authgear's schema for {event_type}{at}: {error}")
    })
}
