//! A `RetryBudget` shared by a fleet through Redis. Deposits happen on every
//! call's success path and withdrawals inside the synchronous retry decision,
//! so neither waits for Redis: each process counts both locally and a
//! background task on the Redis thread syncs them every 100 ms in one script
//! call, reading back the fleet's pool and this second's floor.
//!
//! Between syncs each process spends from its last view of the pool, so in one
//! sync period a fleet of P processes can spend up to P times the pool (each
//! its own view of it), plus each process's floor. A sync is a numbered batch,
//! sent again unchanged until it is answered and applied at most once, so a
//! sync that ran but answered late is never counted twice. While Redis does
//! not answer the budget goes on with this process's own counts, which the
//! next sync carries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::redis_hub::{self, Call, Link, Member, Place, Task};
use crate::{RetryBudget, Store};

/// How often a process syncs its counts with the fleet's pool.
const SYNC_EVERY: Duration = Duration::from_millis(100);

static SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(include_str!("budget.lua")));

/// What this process owes the fleet's pool since its last sync.
pub(crate) struct SharedBudget {
    link: Arc<Link>,
    budget: &'static RetryBudget,
    place: Place,
    key: String,
    /// Where the store keeps the number of this process's last applied batch.
    batch_key: String,
    deposits: AtomicU64,
    withdrawals: AtomicU64,
    floor_taken: AtomicU64,
    /// The batch sent and not yet answered: sent again, unchanged, next time.
    unanswered: Mutex<Option<Batch>>,
    next_batch: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
struct Batch {
    number: u64,
    /// Deposits, earned withdrawals, floor withdrawals.
    counts: [u64; 3],
}

impl std::fmt::Debug for SharedBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedBudget")
            .field("key", &self.key)
            .field("healthy", &self.link.is_healthy())
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
        match self.link.is_healthy() {
            true => Store::Shared,
            false => Store::Degraded,
        }
    }

    /// The batch to send: the unanswered one again, or this process's counts
    /// since the last one.
    fn batch(&self) -> Batch {
        let mut unanswered = self
            .unanswered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *unanswered.get_or_insert_with(|| Batch {
            number: self.next_batch.fetch_add(1, Ordering::Relaxed),
            counts: [&self.deposits, &self.withdrawals, &self.floor_taken]
                .map(|counter| counter.swap(0, Ordering::AcqRel)),
        })
    }

    /// One sync, on the Redis thread: `true` when the store answered.
    async fn sync_here(self: &Arc<Self>) -> bool {
        let batch = self.batch();
        let budget = self.budget;
        let mut args = vec![batch.number.to_string()];
        args.extend(batch.counts.map(|count| count.to_string()));
        args.extend([
            budget.earn_milli.to_string(),
            budget.cap_milli().to_string(),
            String::new(),
        ]);
        let call = Call {
            script: &SCRIPT,
            keys: vec![self.key.clone(), self.batch_key.clone()],
            args,
        };
        let Some(value) = self.link.run_here(call).await else {
            return false;
        };
        let Ok((balance, floor_used)) = redis::from_redis_value::<(String, String)>(value) else {
            return false;
        };
        let (Ok(balance), Ok(floor_used)) = (balance.parse(), floor_used.parse()) else {
            return false;
        };
        let mut unanswered = self
            .unanswered
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if unanswered.is_some_and(|b| b.number == batch.number) {
            *unanswered = None;
        }
        drop(unanswered);
        budget.balance.store(balance, Ordering::Release);
        budget.merge_floor_used(floor_used);
        true
    }
}

impl Member for SharedBudget {
    fn reconnect(self: Arc<Self>) -> Task<bool> {
        Box::pin(async move { self.sync_here().await })
    }
}

impl RetryBudget {
    /// Shares this budget with every process that shares `key` on the Redis at
    /// `url`: retries across the fleet stay within `ratio` of the fleet's first
    /// calls plus `floor_per_sec` a second. Calls never wait for Redis: each
    /// process syncs its counts every 100 ms in the background, and spends
    /// from its last view of the pool between syncs — so in one sync period a
    /// fleet of P processes can spend up to P times the pool, plus each
    /// process's floor; the overspend grows with the number of processes. A
    /// sync that ran but answered late is never counted twice. When Redis
    /// does not answer, the budget goes on with this process's own counts
    /// ([`Store::Degraded`]) and syncs them when it does. The syncs run on
    /// the process's Redis thread (one connection per URL, shared with the
    /// limiters), not on the runtime that called this. Only a malformed `url`
    /// is an error. The keys expire ten minutes after their last sync.
    ///
    /// A budget is shared once: calling this again with the same `url` and
    /// `key` does nothing, with another is an error (`InvalidClientConfig`).
    ///
    /// ```no_run
    /// # mod ai_retry { pub use retry_runtime::*; pub mod runtime { pub use retry_runtime::*; } }
    /// use ai_retry::RetryBudget;
    ///
    /// static LLM_BUDGET: RetryBudget = RetryBudget::new(0.1, 10);
    ///
    /// # async fn start() -> Result<(), Box<dyn std::error::Error>> {
    /// LLM_BUDGET.share_redis("redis://127.0.0.1:6379/", "openai:budget").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn share_redis(&'static self, url: &str, key: &str) -> redis::RedisResult<()> {
        if let Some(shared) = self.shared.get() {
            return shared.place.again("retry budget", url, key);
        }
        let link = redis_hub::link(url)?;
        let process: u64 = rand::random();
        let candidate = Arc::new(SharedBudget {
            link: link.clone(),
            budget: self,
            place: Place::new(url, key),
            key: format!("ai-retry:budget:{key}"),
            batch_key: format!("ai-retry:budget:{key}:batch:{process:016x}"),
            deposits: AtomicU64::new(0),
            withdrawals: AtomicU64::new(0),
            floor_taken: AtomicU64::new(0),
            unanswered: Mutex::new(None),
            next_batch: AtomicU64::new(0),
        });
        if self.shared.set(candidate.clone()).is_err() {
            // Another caller shared it first, just now.
            return Box::pin(self.share_redis(url, key)).await;
        }
        // The first sync inline: the pool is the fleet's from the first call.
        link.join(candidate.clone()).await;
        let shared = candidate;
        let _ = redis_hub::spawn(async move {
            let mut every = tokio::time::interval(SYNC_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                // While degraded the link's probe syncs, as its test of Redis.
                if shared.link.is_healthy() {
                    shared.sync_here().await;
                }
            }
        });
        Ok(())
    }
}
