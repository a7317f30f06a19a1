//! A `RetryBudget` shared by a fleet through Redis. Deposits happen on every
//! call's success path and withdrawals inside the synchronous retry decision,
//! so neither waits for Redis: each process counts both locally and a
//! background task syncs them every 100 ms in one script call, reading back
//! the fleet's pool and this second's floor. Between syncs a process spends
//! from its last view of the pool, so a fleet can overspend by at most what it
//! retries in one sync period. A sync that fails keeps its counts for the next
//! one, and the budget goes on alone meanwhile.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crate::redis_store::{self, BOUND};
use crate::{RetryBudget, Store};

/// How often a process syncs its counts with the fleet's pool.
const SYNC_EVERY: Duration = Duration::from_millis(100);

static SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("budget.lua")));

/// What this process owes the fleet's pool since its last sync.
pub(crate) struct SharedBudget {
    conn: redis::aio::ConnectionManager,
    key: String,
    healthy: AtomicBool,
    deposits: AtomicU64,
    withdrawals: AtomicU64,
    floor_taken: AtomicU64,
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("key", &self.key)
            .field("healthy", &self.healthy.load(Ordering::Relaxed))
            .finish()
    }
}

impl SharedBudget {
    pub(crate) fn deposited(&self) {
        self.deposits.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn withdrew(&self, from_floor: bool) {
        let counter = if from_floor {
            &self.floor_taken
        } else {
            &self.withdrawals
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn store(&self) -> Store {
        match self.healthy.load(Ordering::Acquire) {
            true => Store::Shared,
            false => Store::Degraded,
        }
    }

    /// One sync: this process's counts in, the fleet's pool and floor out.
    async fn sync(&self, earn_milli: u64, cap_milli: u64) -> Option<(u64, u64)> {
        let counts = [&self.deposits, &self.withdrawals, &self.floor_taken]
            .map(|counter| counter.swap(0, Ordering::AcqRel));
        let mut invocation = SCRIPT.key(&self.key);
        invocation
            .arg(counts[0])
            .arg(counts[1])
            .arg(counts[2])
            .arg(earn_milli)
            .arg(cap_milli)
            .arg("");
        let mut conn = self.conn.clone();
        let reply = tokio::time::timeout(
            BOUND,
            invocation.invoke_async::<(String, String)>(&mut conn),
        )
        .await;
        let parsed = match reply {
            Ok(Ok((balance, floor))) => balance.parse().ok().zip(floor.parse().ok()),
            _ => None,
        };
        if parsed.is_none() {
            // Not lost: the next sync carries them.
            for (counter, count) in [&self.deposits, &self.withdrawals, &self.floor_taken]
                .iter()
                .zip(counts)
            {
                counter.fetch_add(count, Ordering::AcqRel);
            }
        }
        parsed
    }
}

impl RetryBudget {
    /// Shares this budget with every process that shares `key` on the Redis at
    /// `url`: retries across the fleet stay within `ratio` of the fleet's first
    /// calls plus `floor_per_sec` a second. Calls never wait for Redis: each
    /// process syncs its counts every 100 ms in the background, so the fleet
    /// may overspend by what it retries in one sync period. When Redis does
    /// not answer the budget goes on with this process's own counts
    /// ([`Store::Degraded`]) and syncs again when it does. Only a malformed
    /// `url` is an error. The key expires ten minutes after its last sync.
    ///
    /// ```no_run
    /// use retry_runtime::RetryBudget;
    ///
    /// static LLM_BUDGET: RetryBudget = RetryBudget::new(0.1, 10);
    ///
    /// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
    /// LLM_BUDGET.share_redis("redis://127.0.0.1:6379/", "openai:budget").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn share_redis(&'static self, url: &str, key: &str) -> redis::RedisResult<()> {
        let conn = redis_store::connection(url)?;
        let shared = Arc::new(SharedBudget {
            conn,
            key: format!("ai-retry:budget:{key}"),
            healthy: AtomicBool::new(false),
            deposits: AtomicU64::new(0),
            withdrawals: AtomicU64::new(0),
            floor_taken: AtomicU64::new(0),
        });
        if self.shared.set(shared.clone()).is_err() {
            return Ok(());
        }
        let (earn, cap) = (self.earn_milli, self.cap_milli());
        // The first sync inline: the pool is the fleet's from the first call.
        self.apply(shared.sync(earn, cap).await, &shared);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(SYNC_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                let synced = shared.sync(earn, cap).await;
                self.apply(synced, &shared);
            }
        });
        Ok(())
    }

    /// The fleet's pool and this second's floor, as the last sync read them.
    fn apply(&self, synced: Option<(u64, u64)>, shared: &SharedBudget) {
        let was = shared.healthy.swap(synced.is_some(), Ordering::AcqRel);
        #[cfg(feature = "tracing")]
        if was != synced.is_some() {
            tracing::info!(key = %shared.key, shared = synced.is_some(), "retry budget: Redis sync state changed");
        }
        let _ = was;
        if let Some((balance, floor_used)) = synced {
            self.balance.store(balance, Ordering::Release);
            self.merge_floor_used(floor_used);
        }
    }
}
