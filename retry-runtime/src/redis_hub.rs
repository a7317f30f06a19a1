//! What the shared limiters and budgets of a process stand on: one Redis
//! connection per URL, driven by a thread of its own, with one health flag and
//! one probe per connection.
//!
//! The thread (a current-thread tokio runtime, started at the first
//! `share_redis`) runs every Redis call, the probes and the budgets' syncs, so
//! none of them is tied to the runtime that first shared a limiter: a limiter
//! shared from a short-lived runtime keeps syncing and recovers in a later one,
//! and a blocking caller can send its reports too.
//!
//! Every call is cut off after [`BOUND`]. The first call that misses it marks
//! the connection degraded: from then on no caller waits on Redis, and one
//! probe runs each member's real script (not a PING, which a paused or
//! write-blocked Redis may still answer) every [`PROBE_EVERY`]. Only when every
//! member's script ran is the connection healthy again — each member having
//! written what its process knows on the way (see `Member::reconnect`).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::runtime::Handle;

/// The longest a Redis call may take before the caller stops waiting for it and
/// uses its in-process state: far above a loopback or LAN round trip, far below
/// any retry delay.
pub(crate) const BOUND: Duration = Duration::from_millis(100);
/// How often a degraded connection is tried again.
pub(crate) const PROBE_EVERY: Duration = Duration::from_millis(250);

/// A boxed future run on the Redis thread.
pub(crate) type Task<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// A state kept in Redis through a [`Link`]: a shared limiter or budget.
pub(crate) trait Member: Send + Sync {
    /// Runs this member's real script once (already on the Redis thread),
    /// writing what this process knows; `true` when Redis ran it in time.
    fn reconnect(self: Arc<Self>) -> Task<bool>;
}

/// Never contacted yet.
const FRESH: u8 = 0;
/// The last call went through.
const HEALTHY: u8 = 1;
/// A call missed the bound: no caller waits on Redis; the probe runs.
const PROBING: u8 = 2;

/// One connection to one Redis URL, shared by every member on it.
pub(crate) struct Link {
    conn: ConnectionManager,
    state: AtomicU8,
    members: Mutex<Vec<Weak<dyn Member>>>,
    /// Wakes whoever waits on a call of this link when it degrades: a call
    /// already in flight then costs them nothing more.
    degraded: tokio::sync::Notify,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link")
            .field("healthy", &self.is_healthy())
            .finish()
    }
}

/// A script call to make: owned, so it can be sent to the Redis thread.
pub(crate) struct Call {
    pub(crate) script: &'static redis::Script,
    pub(crate) keys: Vec<String>,
    pub(crate) args: Vec<String>,
}

/// The Redis thread's runtime, started once per process; `None` if the OS
/// refused a thread or a runtime.
fn hub() -> Option<&'static Handle> {
    static HUB: OnceLock<Option<Handle>> = OnceLock::new();
    HUB.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let handle = runtime.handle().clone();
        std::thread::Builder::new()
            .name("ai-retry-redis".into())
            .spawn(move || runtime.block_on(std::future::pending::<()>()))
            .ok()?;
        Some(handle)
    })
    .as_ref()
}

/// Runs `task` on the Redis thread, detached: it goes on if the caller leaves.
pub(crate) fn spawn<T: Send + 'static>(
    task: impl Future<Output = T> + Send + 'static,
) -> Option<tokio::task::JoinHandle<T>> {
    hub().map(|hub| hub.spawn(task))
}

/// Where a limiter or budget is shared: its URL and its key's name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Place {
    pub(crate) url: String,
    pub(crate) name: String,
}

impl Place {
    pub(crate) fn new(url: &str, name: &str) -> Place {
        Place {
            url: url.to_string(),
            name: name.to_string(),
        }
    }

    /// Sharing again: the same place is nothing to do, another an error
    /// (`what`: "rate limiter", "retry budget").
    pub(crate) fn again(&self, what: &str, url: &str, name: &str) -> redis::RedisResult<()> {
        if self.url == url && self.name == name {
            return Ok(());
        }
        Err(redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "already shared",
            format!(
                "this {what} is shared as `{}`; it cannot be shared again as `{name}`",
                self.name
            ),
        )))
    }
}

/// The one link to `url` in this process (made on first use). Only a malformed
/// `url` (or a process that cannot start a thread) is an error: a Redis that
/// is down now is a degraded start.
pub(crate) fn link(url: &str) -> redis::RedisResult<Arc<Link>> {
    static LINKS: OnceLock<Mutex<HashMap<String, Arc<Link>>>> = OnceLock::new();
    let mut links = LINKS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(link) = links.get(url) {
        return Ok(link.clone());
    }
    let hub = hub().ok_or_else(|| {
        redis::RedisError::from((
            redis::ErrorKind::Io,
            "ai-retry could not start its Redis thread",
        ))
    })?;
    let client = redis::Client::open(url)?;
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(Some(BOUND))
        .set_response_timeout(Some(BOUND))
        .set_number_of_retries(1)
        .set_max_delay(PROBE_EVERY);
    // Made inside the Redis thread's runtime: the connection's own tasks live there.
    let _inside = hub.enter();
    let conn = ConnectionManager::new_lazy_with_config(client, config)?;
    let link = Arc::new(Link {
        conn,
        state: AtomicU8::new(FRESH),
        members: Mutex::new(Vec::new()),
        degraded: tokio::sync::Notify::new(),
    });
    links.insert(url.to_string(), link.clone());
    Ok(link)
}

impl Link {
    pub(crate) fn is_healthy(&self) -> bool {
        self.state.load(Ordering::Acquire) == HEALTHY
    }

    /// `future`'s output, or `None` as soon as the link is (or becomes)
    /// degraded, whichever comes first: no caller waits on Redis once it has
    /// missed the bound for anyone.
    pub(crate) async fn unless_degraded<T>(&self, future: impl Future<Output = T>) -> Option<T> {
        let degraded = std::pin::pin!(self.degraded.notified());
        let mut degraded = degraded;
        degraded.as_mut().enable();
        if !self.is_healthy() {
            return None;
        }
        let mut future = std::pin::pin!(future);
        std::future::poll_fn(|cx| {
            if let std::task::Poll::Ready(output) = future.as_mut().poll(cx) {
                return std::task::Poll::Ready(Some(output));
            }
            degraded.as_mut().poll(cx).map(|()| None)
        })
        .await
    }

    /// Runs `call` on the Redis thread, cut off after [`BOUND`]; `None` when
    /// Redis did not answer in time, which degrades the link. The caller's
    /// wait ends with the bound whatever its runtime.
    pub(crate) async fn run(self: &Arc<Self>, call: Call) -> Option<redis::Value> {
        let link = self.clone();
        spawn(async move { link.run_here(call).await })?
            .await
            .ok()
            .flatten()
    }

    /// Sends `call` and does not wait for it; a miss degrades the link.
    pub(crate) fn send(self: &Arc<Self>, call: Call) {
        let link = self.clone();
        let _ = spawn(async move { link.run_here(call).await });
    }

    /// [`run`](Link::run), on the Redis thread already.
    pub(crate) async fn run_here(self: &Arc<Self>, call: Call) -> Option<redis::Value> {
        let mut invocation = call.script.prepare_invoke();
        for key in &call.keys {
            invocation.key(key);
        }
        for arg in &call.args {
            invocation.arg(arg);
        }
        let mut conn = self.conn.clone();
        let reply = tokio::time::timeout(BOUND, invocation.invoke_async(&mut conn)).await;
        // A script refused (out of memory, read-only replica…) comes back as
        // a value holding the error: a miss like any other.
        match reply.map(|r| r.and_then(redis::Value::extract_error)) {
            Ok(Ok(value)) => Some(value),
            _ => {
                self.degrade();
                None
            }
        }
    }

    /// Adds a member and makes first contact for it: on a fresh or healthy
    /// link its script runs now (bounded), writing what this process knows; on
    /// a degraded one the probe will run it.
    pub(crate) async fn join(self: &Arc<Self>, member: Arc<dyn Member>) {
        self.members
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Arc::downgrade(&member));
        if self.state.load(Ordering::Acquire) == PROBING {
            return;
        }
        let Some(task) = spawn(member.reconnect()) else {
            return;
        };
        if task.await.unwrap_or(false) {
            // Fresh → healthy; a link degraded meanwhile stays with its probe.
            let _ =
                self.state
                    .compare_exchange(FRESH, HEALTHY, Ordering::AcqRel, Ordering::Acquire);
        } else {
            self.degrade();
        }
    }

    /// Marks the link degraded and, on the way in, starts its one probe.
    pub(crate) fn degrade(self: &Arc<Self>) {
        let was = self.state.swap(PROBING, Ordering::AcqRel);
        if was == PROBING {
            return;
        }
        self.degraded.notify_waiters();
        #[cfg(feature = "tracing")]
        tracing::warn!("ai-retry: Redis did not answer in time; using in-process state");
        let link = self.clone();
        let _ = spawn(async move { link.probe().await });
    }

    /// Until every member's script runs again: then healthy. The only way back.
    async fn probe(self: Arc<Self>) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            if self.reconnect_members().await {
                self.state.store(HEALTHY, Ordering::Release);
                #[cfg(feature = "tracing")]
                tracing::info!("ai-retry: Redis answers again; state shared");
                return;
            }
        }
    }

    async fn reconnect_members(&self) -> bool {
        let members: Vec<Arc<dyn Member>> = {
            let mut members = self
                .members
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            members.retain(|member| member.strong_count() > 0);
            members.iter().filter_map(Weak::upgrade).collect()
        };
        for member in members {
            if !member.reconnect().await {
                return false;
            }
        }
        true
    }
}
