//! /metrics, /healthz (the process is alive), /readyz (probes attached, policy loaded) and
//! /report (this node's report from its store; `?since=&until=` (RFC 3339) for a period).
//!
//! The server is bounded so a slow or hostile client cannot hold the daemon: a client
//! must send its request headers within `--http-header-timeout`, a connection quiet for
//! `--http-idle-timeout` is closed, and at most `--http-max-connections` are open (more
//! are closed at once, counted). /report needs the bearer token of
//! `--report-token-file` when one is given, and builds one report at a time: requests
//! that arrive while it is built wait for that one (at most `REPORT_WAIT`, then 503 with
//! Retry-After), and it is reused until the store commits new observations.

use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context as TaskContext, Poll},
    time::{Duration, Instant},
};

use anyhow::Context;
use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, StatusCode, header},
    response::IntoResponse,
    routing::get,
};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::{
    io::{AsyncRead, AsyncWrite, ReadBuf},
    net::TcpStream,
    sync::{OwnedSemaphorePermit, Semaphore, watch},
};

use super::Shared;
use crate::{
    cli::HttpConfig,
    internal_events::{HttpRejected, InternalEvent},
};

/// How long a /report request waits for the build ahead of it before it gets 503.
const REPORT_WAIT: Duration = Duration::from_secs(30);
/// A cached report is served for at most this long even when nothing new was committed
/// (its coverage period would otherwise go stale).
const REPORT_MAX_AGE: Duration = Duration::from_secs(60);

async fn metrics(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.encode(),
    )
}

async fn readyz(State(s): State<Arc<Shared>>) -> impl IntoResponse {
    let kube_synced = s.kube.as_ref().is_none_or(|k| k.synced());
    if s.ready.load(Ordering::Relaxed) && kube_synced {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// The last report built, and what it was built from.
#[derive(Default)]
pub struct ReportCache {
    slot: tokio::sync::Mutex<Option<CachedReport>>,
}

struct CachedReport {
    generation: u64,
    /// The period asked for (unix ms; None = open).
    window: (Option<i64>, Option<i64>),
    built_at: Instant,
    body: Bytes,
}

/// `/report?since=…&until=…` (RFC 3339): the period the report covers; open when absent.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Window {
    since: Option<String>,
    until: Option<String>,
}

impl Window {
    fn ms(&self) -> Result<(Option<i64>, Option<i64>), String> {
        let parse = |name: &str, v: &Option<String>| {
            v.as_deref()
                .map(|t| {
                    crate::model::time::parse_rfc3339(t)
                        .map_err(|e| format!("{name}={t:?}: give an RFC 3339 time ({e})"))
                })
                .transpose()
        };
        let (since, until) = (parse("since", &self.since)?, parse("until", &self.until)?);
        if let (Some(s), Some(u)) = (since, until)
            && s >= u
        {
            return Err("since must be before until".into());
        }
        Ok((since, until))
    }
}

impl ReportCache {
    /// Drops the cached report unless a request is using the cache right now.
    pub fn clear_if_idle(&self) {
        if let Ok(mut slot) = self.slot.try_lock() {
            *slot = None;
        }
    }
}

/// True when the request carries `Authorization: Bearer <token>`. Both sides are hashed
/// first and compared in constant time, so neither the token's content nor its length
/// shows in the response time.
fn authorized(headers: &HeaderMap, token: &str) -> bool {
    use sha2::{Digest, Sha256};
    use subtle::ConstantTimeEq;
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    let (a, b) = (Sha256::digest(given.trim()), Sha256::digest(token));
    bool::from(a.ct_eq(&b))
}

fn rejected(s: &Shared, reason: &'static str) {
    HttpRejected { reason }.emit(&s.metrics);
}

/// This node's report as JSON, from its store: what the cluster report collects.
async fn report(
    State(s): State<Arc<Shared>>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<Window>, axum::extract::rejection::QueryRejection>,
) -> axum::response::Response {
    if let Some(token) = &s.report_token
        && !authorized(&headers, token)
    {
        rejected(&s, "unauthorized");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "/report needs `Authorization: Bearer <token>` (the daemon's --report-token-file)\n",
        )
            .into_response();
    }
    let window = match query.map_err(|e| e.body_text()).and_then(|q| q.ms()) {
        Ok(w) => w,
        Err(why) => return (StatusCode::BAD_REQUEST, format!("/report: {why}\n")).into_response(),
    };
    let Some(path) = s.store_path.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "this daemon keeps no store (--store)\n",
        )
            .into_response();
    };
    let arrived = Instant::now();
    let Ok(mut slot) = tokio::time::timeout(REPORT_WAIT, s.report.slot.lock()).await else {
        rejected(&s, "busy");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "10")],
            "a report is being built; retry later\n",
        )
            .into_response();
    };
    let generation = s.store_generation.load(Ordering::Relaxed);
    if let Some(c) = slot.as_ref()
        && c.window == window
        && (c.built_at >= arrived
            || (c.generation == generation && c.built_at.elapsed() < REPORT_MAX_AGE))
    {
        return json(c.body.clone());
    }
    // The old report's memory goes before the new one is built.
    *slot = None;
    let built = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let store = crate::store::Store::open_existing(&path)?;
        let mut r = crate::report::from_store(&store, None, window.0, window.1)?;
        crate::report::attach_controls(&mut r, &crate::report::Mapping::builtin());
        crate::report::seal(&mut r);
        Ok(serde_json::to_string(&r)?)
    })
    .await;
    match built {
        Ok(Ok(text)) => {
            let body = Bytes::from(text);
            *slot = Some(CachedReport {
                generation,
                window,
                built_at: Instant::now(),
                body: body.clone(),
            });
            json(body)
        }
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

fn json(body: Bytes) -> axum::response::Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

pub async fn serve(
    cfg: HttpConfig,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/report", get(report))
        .with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("listening on {}", cfg.listen))?;
    let limit = Arc::new(Semaphore::new(cfg.max_connections));
    Ok(tokio::spawn(async move {
        let mut conns = tokio::task::JoinSet::new();
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = stop.changed() => break,
            };
            while conns.try_join_next().is_some() {}
            let sock = match accepted {
                Ok((sock, _)) => sock,
                Err(e) => {
                    // Out of fds, most likely: wait for connections to close.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                rejected(&shared, "connection_limit");
                drop(sock);
                continue;
            };
            conns.spawn(connection(
                sock,
                app.clone(),
                cfg.clone(),
                stop.clone(),
                permit,
            ));
        }
        // Shutdown: answers under way get a moment to finish.
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            while conns.join_next().await.is_some() {}
        })
        .await;
    }))
}

/// Serves one connection with the header timeout, and closes it once it has been idle.
async fn connection(
    sock: TcpStream,
    app: Router,
    cfg: HttpConfig,
    mut stop: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
) {
    let start = Instant::now();
    let io = Watched {
        inner: sock,
        start,
        last_ms: Arc::new(AtomicU64::new(0)),
    };
    let last_ms = io.last_ms.clone();
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_timeout);
    let conn = builder.serve_connection(
        TokioIo::new(io),
        hyper_util::service::TowerToHyperService::new(app),
    );
    tokio::pin!(conn);
    let idle_deadline =
        || start + Duration::from_millis(last_ms.load(Ordering::Relaxed)) + cfg.idle_timeout;
    let mut closing: Option<Instant> = None;
    loop {
        // After a graceful shutdown the answer under way may finish; a client that does
        // not read it is dropped after one more idle period.
        let deadline = closing.map_or_else(idle_deadline, |at| at + cfg.idle_timeout);
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = tokio::time::sleep_until(deadline.into()) => {
                if closing.is_some() {
                    return;
                }
                if Instant::now() >= idle_deadline() {
                    conn.as_mut().graceful_shutdown();
                    closing = Some(Instant::now());
                }
            }
            _ = stop.changed(), if closing.is_none() => {
                conn.as_mut().graceful_shutdown();
                closing = Some(Instant::now());
            }
        }
    }
}

/// A socket that notes when it last moved a byte (milliseconds since `start`).
struct Watched {
    inner: TcpStream,
    start: Instant,
    last_ms: Arc<AtomicU64>,
}

impl Watched {
    fn touch(&self) {
        self.last_ms
            .store(self.start.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.touch();
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        data: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut TaskContext<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
