//! The HTTP side of the receiver: hyper's HTTP/1 server on a
//! single-threaded tokio runtime, with every resource a client can hold
//! bounded:
//!
//! - headers: at most [`MAX_HEADER_BYTES`] bytes (start line included) and
//!   [`MAX_HEADERS`] fields, read within the read timeout (hyper answers
//!   431, or closes the connection on a timeout);
//! - body: a `Content-Length` over `--max-body` is refused (413) before a
//!   byte of it is read; a chunked one is cut off at `--max-body`; the
//!   whole body must arrive within the read timeout (408);
//! - connections: at most `--max-connections` at once; the next ones wait
//!   in the kernel's accept backlog; one request per connection (no
//!   keep-alive);
//! - checking and logging (signature, fsync) run on the blocking pool,
//!   `--workers` threads at most, so a slow disk never stalls the sockets;
//! - shutdown: stop accepting at once, let requests in hand finish for up
//!   to [`GRACE`], then drop the rest.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use super::metrics::refusal_reason;
use super::read::{self, Reply};
use super::state::State;
use super::verify::{self, Reject};

/// Largest request head (start line and header fields), in bytes.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header fields in one request.
pub const MAX_HEADERS: usize = 64;
/// How long requests in hand may take to finish once a stop is asked for.
pub const GRACE: Duration = Duration::from_secs(1);
/// How often the accept loop looks at the stop flag.
const POLL: Duration = Duration::from_millis(50);

/// The limits a running server applies.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_body: usize,
    pub max_connections: usize,
    /// For the request head, and again for the body.
    pub read_timeout: Duration,
}

/// Serve on `listener` until `stop` is set; then shut down within about
/// [`GRACE`] plus [`POLL`].
pub async fn serve(
    listener: TcpListener,
    state: Arc<State>,
    limits: Limits,
    stop: Arc<AtomicBool>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_header_size(MAX_HEADER_BYTES)
        .max_headers(MAX_HEADERS)
        // A small read buffer: a head must fit in MAX_HEADER_BYTES, and
        // the body is collected chunk by chunk.
        .max_buf_size(2 * MAX_HEADER_BYTES)
        .keep_alive(false);
    let http = Arc::new(http);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let (closing, closed) = watch::channel(false);
    let mut conns = JoinSet::new();

    let stopped = wait_for(Arc::clone(&stop));
    tokio::pin!(stopped);
    loop {
        // A slot first: past the cap, connections wait in the backlog.
        let slot = tokio::select! {
            _ = &mut stopped => break,
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
        };
        let (stream, (peer, local)) = tokio::select! {
            _ = &mut stopped => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => match stream.local_addr() {
                    Ok(local) => (stream, (peer, local)),
                    Err(_) => continue,
                },
                Err(e) => {
                    // Out of file descriptors, most likely: wait a little
                    // instead of spinning.
                    tracing::warn!(error = %e, "cannot accept a connection; retrying");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        while conns.try_join_next().is_some() {}
        let state = Arc::clone(&state);
        let http = Arc::clone(&http);
        let mut closed = closed.clone();
        conns.spawn(async move {
            let _slot = slot;
            let service =
                service_fn(move |req| handle(req, peer, local, Arc::clone(&state), limits));
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = closed.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    drop(listener);
    let _ = closing.send(true);
    let drained = async { while conns.join_next().await.is_some() {} };
    if tokio::time::timeout(GRACE, drained).await.is_err() {
        conns.shutdown().await;
    }
}

/// Resolves once `stop` is set.
async fn wait_for(stop: Arc<AtomicBool>) {
    let mut tick = tokio::time::interval(POLL);
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
    }
}

async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
    state: Arc<State>,
    limits: Limits,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    let method = req.method().clone();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned());
    let (route, reply) = if method == Method::GET || method == Method::HEAD {
        let route = read::route_label(req.uri().path());
        (
            route,
            serve_read(req, peer, local, Arc::clone(&state)).await,
        )
    } else {
        let reply = match answer(req, local, Arc::clone(&state), limits).await {
            Ok(msg) => Reply {
                status: 204,
                content_type: "",
                body: Vec::new(),
                note: msg,
            },
            Err((status, msg)) => {
                state.metrics.refused(refusal_reason(status));
                Reply {
                    status,
                    content_type: "text/plain; charset=utf-8",
                    body: format!("{msg}\n").into_bytes(),
                    note: msg,
                }
            }
        };
        let route = if method == Method::POST {
            "callback"
        } else {
            "other"
        };
        (route, reply)
    };
    state
        .metrics
        .observe(route, reply.status, started.elapsed());
    let (status, msg) = (reply.status, &reply.note);
    // The message says it all for people; the fields are for collectors.
    if status < 400 {
        tracing::info!(status, %method, %target, %peer, "{status} {method} {target}: {msg}");
    } else {
        tracing::warn!(status, %method, %target, %peer, "{status} {method} {target}: {msg}");
    }
    let mut resp = Response::new(Full::new(Bytes::from(reply.body)));
    if !reply.content_type.is_empty() {
        resp.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    }
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if status == 405 {
        resp.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
    }
    Ok(resp)
}

/// The header fields as (name, value) text; 400 for a value that is not
/// visible ASCII (it could not have been signed as text).
fn header_fields(map: &hyper::HeaderMap) -> Result<Vec<(String, String)>, Reject> {
    let mut headers = Vec::with_capacity(map.len());
    for (name, value) in map {
        let value = value
            .to_str()
            .map_err(|_| (400, format!("header {name} is not visible ASCII text")))?;
        headers.push((name.as_str().to_owned(), value.to_owned()));
    }
    Ok(headers)
}

/// A read (`GET`, `HEAD`): answered on the blocking pool, as the index is
/// a file.
async fn serve_read(
    req: Request<Incoming>,
    peer: SocketAddr,
    local: SocketAddr,
    state: Arc<State>,
) -> Reply {
    let (head, _body) = req.into_parts();
    let headers = match header_fields(&head.headers) {
        Ok(h) => h,
        Err((status, why)) => return read::error(status, why),
    };
    let request = read::Read {
        method: head.method.as_str().to_owned(),
        path: head.uri.path().to_owned(),
        query: head.uri.query().map(str::to_owned),
        headers,
        peer,
        local,
    };
    tokio::task::spawn_blocking(move || read::answer(&state, request))
        .await
        .unwrap_or_else(|e| read::error(500, format!("answering the read failed: {e}")))
}

/// Read the request within the limits, then check and log it on the
/// blocking pool.
async fn answer(
    req: Request<Incoming>,
    local: SocketAddr,
    state: Arc<State>,
    limits: Limits,
) -> Result<String, Reject> {
    if req.method() != Method::POST {
        return Err((
            405,
            format!(
                "{} is not served: POST a callback, or GET / HEAD the registry",
                req.method()
            ),
        ));
    }
    let too_large = || (413, format!("body larger than {} bytes", limits.max_body));
    // Content-Length is known before a byte of the body is read.
    if req.body().size_hint().lower() > limits.max_body as u64 {
        return Err(too_large());
    }
    let (head, body) = req.into_parts();
    let headers = header_fields(&head.headers)?;
    let collected = tokio::time::timeout(
        limits.read_timeout,
        Limited::new(body, limits.max_body).collect(),
    )
    .await
    .map_err(|_| {
        (
            408,
            format!(
                "body not received within {}s; send it at once",
                limits.read_timeout.as_secs()
            ),
        )
    })?;
    let body = match collected {
        Ok(c) => c.to_bytes().to_vec(),
        Err(e) if e.is::<LengthLimitError>() => return Err(too_large()),
        Err(e) => return Err((400, format!("cannot read body: {e}"))),
    };
    let incoming = verify::Incoming {
        method: head.method.as_str().to_owned(),
        path: head.uri.path().to_owned(),
        query: head.uri.query().map(str::to_owned),
        headers,
        body,
        local,
    };
    tokio::task::spawn_blocking(move || verify::check(&state, incoming))
        .await
        .map_err(|e| (500, format!("checking the request failed: {e}")))?
}
