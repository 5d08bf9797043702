//! What the metrics endpoint is: where it listens.

use std::net::SocketAddr;

/// The `[metrics]` section: where the Prometheus endpoint and the health checks listen.
///
/// ```toml
/// [metrics]
/// listen = "127.0.0.1:9464"   # /metrics, /health, /ready
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsSpec {
    /// The address and port to listen on (`0.0.0.0:9464` to be scraped from other hosts).
    pub listen: SocketAddr,
}

impl MetricsSpec {
    /// The endpoint on `listen`.
    ///
    /// ```
    /// let spec = weir::MetricsSpec::new("127.0.0.1:9464".parse().unwrap());
    /// assert_eq!(spec.listen.port(), 9464);
    /// ```
    pub fn new(listen: SocketAddr) -> MetricsSpec {
        MetricsSpec { listen }
    }
}
