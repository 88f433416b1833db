//! The local server's connections (docs/api.md §7): hyper serves HTTP/1 on each, behind a guard that
//! holds every request head back until it is whole, so that a head too large, malformed or too
//! slow gets the contract's JSON error (hyper alone answers a bare 400/414/431, or closes without
//! a word), and a declared body that does not arrive in time is answered `408`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use contact_channels::error::ApiError;
use http::{HeaderValue, Request, header};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

/// Time and size limits of a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// A request head (request line and headers) must be whole within this, counted from the
    /// connection's start or from the head's first byte. A kept-alive connection that stays
    /// idle this long after a response is closed (without a response: nothing was asked).
    pub header_timeout: Duration,
    /// A declared body must have arrived within this, counted from the end of its head.
    pub body_timeout: Duration,
    /// The most bytes a request head may have (hyper's own limits are far above).
    pub max_head_bytes: usize,
}

impl Default for ConnLimits {
    /// 10 s for the head, 10 s for the body, 32 KiB of head.
    fn default() -> Self {
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            max_head_bytes: 32 * 1024,
        }
    }
}

/// The most headers a request may have: hyper's own limit, so that it never refuses a head the
/// guard let through.
const MAX_HEADERS: usize = 100;
/// After an error answer, unread request bytes are drained for at most this long (and this
/// many), so that closing does not reset the connection before the client read the answer.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// Serves `app` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        tokio::spawn(connection(stream, app.clone(), limits));
    }
}

async fn connection(stream: TcpStream, app: Router, limits: ConnLimits) {
    let _ = stream.set_nodelay(true);
    let service = service_fn(move |request| answer(app.clone(), request, limits.body_timeout));
    let served = http1::Builder::new()
        // A head the guard refused ends the stream hyper reads; it must still finish the
        // answer it is writing, and then hand the connection back.
        .half_close(true)
        .serve_connection(TokioIo::new(Guard::new(stream, limits)), service)
        .without_shutdown()
        .await;
    let Ok(parts) = served else {
        return;
    };
    let guard = parts.io.into_inner();
    if let Some(error) = guard.refusal {
        tracing::info!(
            status = error.status().as_u16(),
            "request refused before it reached a route"
        );
        let mut stream = guard.io;
        if stream.write_all(&raw_response(error).await).await.is_ok() {
            linger(stream).await;
        }
    }
}

/// Answers one request; a body that did not arrive within `body_timeout` turns the answer into
/// `408` (the router saw a body it could not read).
async fn answer(
    app: Router,
    request: Request<Incoming>,
    body_timeout: Duration,
) -> Result<Response, Infallible> {
    let timed_out = Arc::new(AtomicBool::new(false));
    let flag = timed_out.clone();
    let request = request.map(|body| {
        Body::new(DeadlineBody {
            inner: body,
            deadline: Box::pin(tokio::time::sleep(body_timeout)),
            timed_out: flag,
        })
    });
    let response = app.oneshot(request).await?;
    if timed_out.load(Ordering::SeqCst) {
        // The router logged the body it could not read; this is what the client gets instead.
        tracing::info!(status = 408, "the request body did not arrive in time");
        let mut response = ApiError::RequestTimeout.into_response();
        // The rest of the body may still come: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return Ok(response);
    }
    Ok(response)
}

/// A request body that fails once its deadline has passed.
struct DeadlineBody {
    inner: Incoming,
    deadline: Pin<Box<Sleep>>,
    timed_out: Arc<AtomicBool>,
}

impl http_body::Body for DeadlineBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.timed_out.store(true, Ordering::SeqCst);
            return Poll::Ready(Some(Err("the request body did not arrive in time".into())));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

/// The bytes of an error answer on the wire: the router's own JSON error, and a closed
/// connection.
async fn raw_response(error: ApiError) -> Vec<u8> {
    let (parts, body) = error.into_response().into_parts();
    let body = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let status = parts.status;
    let mut out = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_str(),
        status.canonical_reason().unwrap_or("Error")
    )
    .into_bytes();
    for (name, value) in &parts.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    out.extend_from_slice(&body);
    out
}

/// Closes the sending side, then reads and drops what the client still sends for a while: a
/// close with unread bytes would reset the connection and could destroy the answer in flight.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut buf = [0u8; 8192];
        let mut total = 0;
        while total < LINGER_BYTES {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Where the guard is in the byte stream of the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// The next bytes are a request head.
    Head,
    /// This many bytes of a `content-length` body are still to come.
    Body(u64),
    /// A chunked body, at this point.
    Chunked(Chunk),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// In a chunk-size line; the size read so far, and whether an extension began.
    Size { size: u64, extension: bool },
    /// This many bytes of chunk data are still to come.
    Data(u64),
    /// The line end after chunk data.
    DataEnd,
    /// In the trailer section; whether the current line has any byte before its line end.
    Trailer { line_has_bytes: bool },
}

/// The stream hyper reads: whole request heads (checked) and bodies, never a partial head.
struct Guard<S> {
    io: S,
    limits: ConnLimits,
    framing: Framing,
    /// The head being received, held back from hyper until it is whole.
    head: Vec<u8>,
    /// Bytes released to hyper and not read by it yet.
    ready: Vec<u8>,
    ready_from: usize,
    /// When the current head's time began: the connection's start, or the head's first byte.
    head_since: Option<Instant>,
    /// When hyper last wrote; `None` since the last head was released.
    wrote_at: Option<Instant>,
    /// The deadline the timer is set to, and the timer.
    deadline: Option<Instant>,
    timer: Pin<Box<Sleep>>,
    /// Why the connection ends: hyper is told the stream ended, then this is answered.
    refusal: Option<ApiError>,
    /// The connection ends without an answer (an idle kept-alive connection timed out).
    closing: bool,
    eof: bool,
}

impl<S> Guard<S> {
    fn new(io: S, limits: ConnLimits) -> Guard<S> {
        let now = Instant::now();
        Guard {
            io,
            limits,
            framing: Framing::Head,
            head: Vec::new(),
            ready: Vec::new(),
            ready_from: 0,
            head_since: Some(now),
            wrote_at: None,
            deadline: None,
            timer: Box::pin(tokio::time::sleep_until(now)),
            refusal: None,
            closing: false,
            eof: false,
        }
    }

    /// The deadline that applies now: the head's, or an idle connection's after a response.
    fn current_deadline(&self) -> Option<Instant> {
        if self.framing != Framing::Head {
            return None;
        }
        match (self.head_since, self.wrote_at) {
            (Some(since), _) => Some(since + self.limits.header_timeout),
            (None, Some(wrote)) => Some(wrote + self.limits.header_timeout),
            // Between a released head and its answer: the request is being served.
            (None, None) => None,
        }
    }

    fn on_timeout(&mut self) {
        if self.head_since.is_some() {
            self.refusal = Some(ApiError::RequestTimeout);
        } else {
            self.closing = true;
        }
    }

    fn release(&mut self, bytes: &[u8]) {
        if self.ready_from == self.ready.len() {
            self.ready.clear();
            self.ready_from = 0;
        }
        self.ready.extend_from_slice(bytes);
    }

    /// Releases up to `left` body bytes of `rest`: how many it took, and how many are left.
    fn pass(&mut self, left: u64, rest: &[u8]) -> (usize, u64) {
        let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
        self.release(&rest[..take]);
        (take, left - take as u64)
    }

    /// Runs newly received bytes through the framing, releasing what hyper may read.
    fn feed(&mut self, input: &[u8]) {
        let mut at = 0;
        while at < input.len() && self.refusal.is_none() {
            let rest = &input[at..];
            match self.framing {
                Framing::Head => {
                    if self.head_since.is_none() {
                        self.head_since = Some(Instant::now());
                    }
                    let room = self.limits.max_head_bytes + 1 - self.head.len();
                    let take = rest.len().min(room);
                    self.head.extend_from_slice(&rest[..take]);
                    at += take;
                    match self.check_head() {
                        Ok(Some(len)) => {
                            // The head ends within the bytes just taken (it was partial before):
                            // what follows it is body or the next request, and goes round again.
                            at -= self.head.len() - len;
                            let head = std::mem::take(&mut self.head);
                            self.release(&head[..len]);
                            self.head_since = None;
                            self.wrote_at = None;
                        }
                        Ok(None) => {}
                        Err(e) => self.refusal = Some(e),
                    }
                }
                Framing::Body(left) => {
                    let (took, left) = self.pass(left, rest);
                    at += took;
                    self.framing = if left == 0 {
                        Framing::Head
                    } else {
                        Framing::Body(left)
                    };
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    let (took, left) = self.pass(left, rest);
                    at += took;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                }
                Framing::Chunked(chunk) => {
                    self.release(&rest[..1]);
                    match step_chunk(chunk, rest[0]) {
                        Some(next) => self.framing = next,
                        // hyper refuses the body the same way; it answers that request.
                        None => self.framing = Framing::Body(u64::MAX),
                    }
                    at += 1;
                }
            }
        }
    }

    /// The length of the head when it is whole and acceptable; `None` while it is partial.
    fn check_head(&mut self) -> Result<Option<usize>, ApiError> {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&self.head) {
            Ok(httparse::Status::Complete(len)) if len <= self.limits.max_head_bytes => {
                self.framing = framing_of(&request)?;
                Ok(Some(len))
            }
            Ok(_) if self.head.len() <= self.limits.max_head_bytes => Ok(None),
            Ok(_) if !self.head.contains(&b'\n') => Err(ApiError::UriTooLong),
            Ok(_) | Err(httparse::Error::TooManyHeaders) => Err(ApiError::HeadersTooLarge),
            Err(_) => Err(ApiError::MalformedRequest),
        }
    }
}

/// How the body after a request head is delimited, as hyper reads it (RFC 9112 §6.3).
fn framing_of(request: &httparse::Request<'_, '_>) -> Result<Framing, ApiError> {
    // What httparse lets through and hyper would still refuse with a bare 400.
    let method = request.method.unwrap_or_default();
    let path = request.path.unwrap_or_default();
    if http::Method::from_bytes(method.as_bytes()).is_err() || http::Uri::try_from(path).is_err() {
        return Err(ApiError::MalformedRequest);
    }
    let mut chunked = None;
    let mut length: Option<u64> = None;
    for h in request.headers.iter() {
        if h.name.eq_ignore_ascii_case("transfer-encoding") {
            if request.version != Some(1) {
                return Err(ApiError::MalformedRequest);
            }
            let last = h.value.rsplit(|b| *b == b',').next().unwrap_or_default();
            chunked = Some(last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("content-length") {
            for part in h.value.split(|b| *b == b',') {
                let part = part.trim_ascii();
                let n = std::str::from_utf8(part)
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or(ApiError::MalformedRequest)?;
                if length.is_some_and(|l| l != n) {
                    return Err(ApiError::MalformedRequest);
                }
                length = Some(n);
            }
        }
    }
    match (chunked, length) {
        (Some(true), _) => Ok(Framing::Chunked(Chunk::Size {
            size: 0,
            extension: false,
        })),
        (Some(false), _) => Err(ApiError::MalformedRequest),
        (None, Some(n)) if n > 0 => Ok(Framing::Body(n)),
        (None, _) => Ok(Framing::Head),
    }
}

/// One byte of chunked framing; `None` when it cannot be chunked framing.
fn step_chunk(chunk: Chunk, byte: u8) -> Option<Framing> {
    let next = match chunk {
        Chunk::Size { size, extension } => match byte {
            b'\n' if size == 0 => Chunk::Trailer {
                line_has_bytes: false,
            },
            b'\n' => Chunk::Data(size),
            b'\r' => chunk,
            _ if extension => chunk,
            b';' | b' ' | b'\t' => Chunk::Size {
                size,
                extension: true,
            },
            _ => {
                let digit = char::from(byte).to_digit(16)?;
                Chunk::Size {
                    size: size.checked_mul(16)?.checked_add(u64::from(digit))?,
                    extension,
                }
            }
        },
        Chunk::DataEnd => match byte {
            b'\n' => Chunk::Size {
                size: 0,
                extension: false,
            },
            _ => chunk,
        },
        Chunk::Trailer { line_has_bytes } => match byte {
            b'\n' if !line_has_bytes => return Some(Framing::Head),
            b'\n' => Chunk::Trailer {
                line_has_bytes: false,
            },
            b'\r' => chunk,
            _ => Chunk::Trailer {
                line_has_bytes: true,
            },
        },
        Chunk::Data(_) => chunk,
    };
    Some(Framing::Chunked(next))
}

impl<S: AsyncRead + Unpin> AsyncRead for Guard<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.ready_from < this.ready.len() {
                let n = buf.remaining().min(this.ready.len() - this.ready_from);
                buf.put_slice(&this.ready[this.ready_from..this.ready_from + n]);
                this.ready_from += n;
                return Poll::Ready(Ok(()));
            }
            // The end of the stream, as hyper sees it: it finishes what it is doing and stops.
            if this.refusal.is_some() || this.closing || this.eof {
                return Poll::Ready(Ok(()));
            }
            if let Some(deadline) = this.current_deadline() {
                if this.deadline != Some(deadline) {
                    this.timer.as_mut().reset(deadline);
                    this.deadline = Some(deadline);
                }
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.on_timeout();
                    continue;
                }
            }
            let mut bytes = [0u8; 8192];
            let mut read = ReadBuf::new(&mut bytes);
            match Pin::new(&mut this.io).poll_read(cx, &mut read) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Ready(Ok(())) if read.filled().is_empty() => {
                    // A partial head is handed over as it is: hyper reports the cut-off message.
                    let head = std::mem::take(&mut this.head);
                    this.release(&head);
                    this.eof = true;
                }
                Poll::Ready(Ok(())) => {
                    let received = read.filled().to_vec();
                    this.feed(&received);
                }
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Guard<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.wrote_at = Some(Instant::now());
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests;
