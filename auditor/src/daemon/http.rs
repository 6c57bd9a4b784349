//! /metrics, /healthz (the process is alive) and /readyz (probes attached, policy loaded).

use std::{net::SocketAddr, sync::Arc, sync::atomic::Ordering};

use anyhow::Context;
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use tokio::sync::watch;

use super::Shared;

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

/// This node's report as JSON, from its store: what the cluster report collects.
async fn report(State(s): State<Arc<Shared>>) -> axum::response::Response {
    let Some(path) = s.store_path.clone() else {
        return (
            StatusCode::NOT_FOUND,
            "this daemon keeps no store (--store)\n",
        )
            .into_response();
    };
    let built = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        let store = crate::store::Store::open_existing(&path)?;
        let mut r = crate::report::from_store(&store, None, None, None)?;
        crate::report::seal(&mut r);
        Ok(serde_json::to_string(&r)?)
    })
    .await;
    match built {
        Ok(Ok(json)) => ([("content-type", "application/json")], json).into_response(),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}\n")).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

pub async fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/report", get(report))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    Ok(tokio::spawn(async move {
        let shutdown = async move {
            let _ = stop.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %e, "metrics server stopped");
        }
    }))
}
