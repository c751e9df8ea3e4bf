//! The wire harness: a raw HTTP/1.x client and an HTTP/2 client, for tests that need
//! to send what a well-behaved client would not, or to see the connection itself.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, combinators::BoxBody};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    time::timeout,
};

use super::{BoxError, TIMEOUT};

/// The request body the HTTP/2 client sends.
pub type ReqBody = BoxBody<Bytes, BoxError>;

/// One response read off a raw connection.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub head: String,
    pub body: Vec<u8>,
}

/// A raw HTTP/1.x client connection: writes bytes, reads responses one by one.
pub struct Raw {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Raw {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        Self {
            stream,
            buffer: Vec::new(),
        }
    }

    pub async fn send(&mut self, raw: &[u8]) -> std::io::Result<()> {
        timeout(TIMEOUT, self.stream.write_all(raw))
            .await
            .expect("the server reads in time")
    }

    /// Half-closes: the server reads end-of-file.
    pub async fn shutdown(&mut self) {
        let _ = self.stream.shutdown().await;
    }

    /// The next response, or `None` if the server closes the connection first.
    pub async fn response(&mut self) -> Option<RawResponse> {
        timeout(TIMEOUT, async {
            loop {
                if let Some(response) = self.parse() {
                    return Some(response);
                }
                let mut chunk = [0; 16 * 1024];
                match self.stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return None,
                    Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                }
            }
        })
        .await
        .expect("the server answers or closes in time")
    }

    /// Whether the server closes the connection (within `TIMEOUT`) without sending
    /// anything more.
    pub async fn closed(&mut self) -> bool {
        let mut chunk = [0; 1024];
        match timeout(TIMEOUT, self.stream.read(&mut chunk)).await {
            Ok(Ok(0) | Err(_)) => self.buffer.is_empty(),
            Ok(Ok(_)) | Err(_) => false,
        }
    }

    fn parse(&mut self) -> Option<RawResponse> {
        let end = self.buffer.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
        let head = String::from_utf8_lossy(&self.buffer[..end]).into_owned();
        let status = head
            .get(9..12)
            .and_then(|code| code.parse().ok())
            .expect("a status line");
        let mut length = 0;
        for line in head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().expect("content-length");
                }
                assert!(
                    !name.eq_ignore_ascii_case("transfer-encoding"),
                    "all responses here have a length: {head}"
                );
            }
        }
        if self.buffer.len() < end + length {
            return None;
        }
        let body = self.buffer[end..end + length].to_vec();
        self.buffer.drain(..end + length);
        Some(RawResponse { status, head, body })
    }
}

/// An HTTP/2 client connection (prior knowledge), through hyper.
pub struct H2 {
    addr: SocketAddr,
    send: hyper::client::conn::http2::SendRequest<ReqBody>,
}

impl H2 {
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect in time")
            .expect("connect");
        let (send, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .expect("HTTP/2 handshake");
        tokio::spawn(connection);
        Self { addr, send }
    }

    /// POSTs to `/hook` with `headers` (appended: a name may repeat) and returns the status
    /// and body, or the error of the stream or connection.
    pub async fn post(
        &mut self,
        headers: &[(HeaderName, HeaderValue)],
        body: ReqBody,
    ) -> Result<(StatusCode, Bytes), hyper::Error> {
        let mut request = Request::post(format!("http://{}/hook", self.addr))
            .body(body)
            .expect("request");
        for (name, value) in headers {
            request.headers_mut().append(name, value.clone());
        }
        timeout(TIMEOUT, async {
            self.send.ready().await?;
            let response = self.send.send_request(request).await?;
            let status = response.status();
            Ok((status, response.into_body().collect().await?.to_bytes()))
        })
        .await
        .expect("the server answers in time")
    }
}
