//! The node's HTTP endpoint: the whole HTTP API of `veil-builder-api` (builders, data API,
//! users, `/health`, `/ready`, `/metrics`, `/openapi.json`) over the node's
//! [`NodeApi`](super::api::NodeApi) backend, on one TCP listener. Connections carry their
//! peer address to the router, for the per-address rate limit.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::task::JoinHandle;
use veil_builder_api::server::{router, ApiBackend, ServerConfig};

/// A running HTTP endpoint.
#[derive(Debug)]
pub struct HttpServer {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl HttpServer {
    /// Binds `listen` and serves the API over `backend`. Must run inside a tokio runtime.
    ///
    /// # Errors
    /// If the address cannot be bound.
    pub async fn start(
        listen: SocketAddr,
        backend: Arc<dyn ApiBackend>,
        config: ServerConfig,
    ) -> anyhow::Result<HttpServer> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let local_addr = listener.local_addr()?;
        let app = router(backend, config);
        let task = tokio::spawn(async move {
            let service = app.into_make_service_with_connect_info::<SocketAddr>();
            if let Err(e) = axum::serve(listener, service).await {
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
