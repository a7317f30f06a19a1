//! What the shared limiter and the shared budget both stand on: a Redis
//! connection that reconnects by itself, and the bound on every call to it.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// The longest a Redis call may take before the caller stops waiting for it and
/// uses its in-process state: far above a loopback or LAN round trip, far below
/// any retry delay.
pub(crate) const BOUND: Duration = Duration::from_millis(100);
/// How often a degraded store checks whether Redis is back.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(250);

/// A connection to `url`, made lazily and remade after failures, so a Redis
/// that is down now is not an error; only a malformed `url` is.
pub(crate) fn connection(url: &str) -> redis::RedisResult<ConnectionManager> {
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(BOUND))
        .set_response_timeout(Some(BOUND))
        .set_number_of_retries(1)
        .set_max_delay(PROBE_EVERY);
    ConnectionManager::new_lazy_with_config(client, config)
}
