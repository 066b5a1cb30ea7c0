//! The node's HTTP endpoint (axum): `/metrics` (Prometheus text) and `/health`. The builder,
//! rollup, user and data APIs will be routers added here.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::task::JoinHandle;

use crate::metrics::NodeMetrics;

/// A running HTTP endpoint.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Binds `listen` and serves. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn start(
        listen: SocketAddr,
        metrics: Arc<NodeMetrics>,
    ) -> anyhow::Result<HttpServer> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let app = Router::new()
            .route("/metrics", get(serve_metrics))
            .route("/health", get(|| async { (StatusCode::OK, "ok\n") }))
            .with_state(metrics);
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "http endpoint stopped");
            }
        });
        tracing::info!(%local_addr, "http endpoint listening");
        Ok(HttpServer { local_addr, task })
    }

    /// The bound address.
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops serving.
    pub fn stop(self) {
        self.task.abort();
    }
}

async fn serve_metrics(
    axum::extract::State(metrics): axum::extract::State<Arc<NodeMetrics>>,
) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        metrics.encode(),
    )
}
