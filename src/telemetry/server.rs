//! `/healthz`, `/readyz` and `/metrics` on one port.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use super::health::Health;
use super::metrics::Metrics;

/// The endpoint could not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot serve health and metrics on {address}: {source}")]
pub struct ServeError {
    address: SocketAddr,
    source: std::io::Error,
}

#[derive(Clone)]
struct AppState {
    metrics: Arc<Metrics>,
    health: Health,
}

/// Binds `address` now (so a taken port fails at start-up), then serves
/// until `shutdown` completes.
pub async fn serve(
    address: SocketAddr,
    metrics: Arc<Metrics>,
    health: Health,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<impl Future<Output = Result<(), std::io::Error>>, ServeError> {
    let listener = tokio::net::TcpListener::bind(address).await.map_err(|source| ServeError { address, source })?;
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AppState { metrics, health });
    Ok(async move { axum::serve(listener, app).with_graceful_shutdown(shutdown).await })
}

async fn healthz(State(state): State<AppState>) -> impl IntoResponse {
    match state.health.live(std::time::Instant::now()) {
        Ok(()) => (StatusCode::OK, "ok".to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.health.ready(std::time::Instant::now()) {
        Ok(body) => (StatusCode::OK, body.to_owned()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn metrics_text(State(state): State<AppState>) -> impl IntoResponse {
    match state.metrics.encode() {
        Ok(text) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
            text,
        ),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            String::from("cannot encode metrics"),
        ),
    }
}
