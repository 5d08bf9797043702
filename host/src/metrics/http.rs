//! The endpoint: `/metrics`, `/health` and `/ready` over HTTP/1.1, served beside the batch loop on tokio
//! for as long as the run lasts.

use std::convert::Infallible;
use std::sync::Arc;

use anyhow::Context;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{Metrics, MetricsSpec};
use crate::udf::CallCounts;

/// The OpenMetrics text format, which Prometheus asks for and reads.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The endpoint while it runs, with the metrics it serves; dropping it stops serving.
pub(crate) struct MetricsServer {
    metrics: Arc<Metrics>,
    serving: JoinHandle<()>,
}

impl MetricsServer {
    /// Listens on `spec.listen` and serves the metrics of pipeline `name` until dropped. Fails, naming the
    /// key, when the address cannot be bound (in use, or not this host's).
    pub(crate) async fn start(
        spec: &MetricsSpec,
        name: &str,
        udfs: Vec<(String, Arc<CallCounts>)>,
    ) -> anyhow::Result<MetricsServer> {
        let listener = TcpListener::bind(spec.listen)
            .await
            .with_context(|| format!("metrics.listen: cannot listen on {}", spec.listen))?;
        let address = listener.local_addr()?;
        tracing::info!(%address, "metrics served: /metrics, /health, /ready");
        let metrics = Arc::new(Metrics::new(name, udfs));
        let serving = tokio::spawn(accept(listener, metrics.clone()));
        Ok(MetricsServer { metrics, serving })
    }

    /// The metrics it serves, for the batch loop to update.
    pub(crate) fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

/// Accepts connections until aborted; each is served on its own task, so a slow scraper holds no one up.
async fn accept(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(error) => {
                // Out of file descriptors, say: wait a little rather than spin.
                tracing::warn!(%error, "metrics: accepting a connection failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(respond(&request, &metrics)) }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "metrics: a connection ended with an error");
            }
        });
    }
}

/// The answer to one request.
fn respond(request: &Request<Incoming>, metrics: &Metrics) -> Response<Full<Bytes>> {
    let text = |status: StatusCode, content_type: &str, body: String| {
        Response::builder()
            .status(status)
            .header(CONTENT_TYPE, content_type)
            .body(Full::new(Bytes::from(body)))
            .expect("a static status and header are valid")
    };
    let plain = "text/plain; charset=utf-8";
    if request.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, plain, "GET only\n".into());
    }
    match request.uri().path() {
        "/metrics" => text(StatusCode::OK, OPENMETRICS, metrics.encode()),
        "/health" => text(StatusCode::OK, plain, "ok\n".into()),
        "/ready" if metrics.is_ready() => text(StatusCode::OK, plain, "ready\n".into()),
        "/ready" => text(
            StatusCode::SERVICE_UNAVAILABLE,
            plain,
            "not ready: the source or the sink is not open\n".into(),
        ),
        _ => text(
            StatusCode::NOT_FOUND,
            plain,
            "not found: /metrics, /health and /ready are served\n".into(),
        ),
    }
}
