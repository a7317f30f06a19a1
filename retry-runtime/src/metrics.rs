//! What the loops report through the `metrics` facade (feature `metrics`); the
//! application installs whatever recorder or exporter it uses. Only the failure
//! path reports: a metric labelled by function builds its key at run time,
//! which allocates, and the success path allocates nothing.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `ai_retry_failed_attempts_total` | counter | `function`, `class` |
//! | `ai_retry_retries_total` | counter | `function`, `class` |
//! | `ai_retry_give_ups_total` | counter | `function`, `reason` |
//! | `ai_retry_sleep_seconds` | histogram | `function` |
//! | `ai_retry_limiter_wait_seconds` | histogram | — |

use std::time::Duration;

use crate::{ErrorClass, GiveUp};

pub(crate) fn failed_attempt(function: &'static str, class: Option<ErrorClass>) {
    let class = class.map_or("unclassified", ErrorClass::name);
    metrics::counter!("ai_retry_failed_attempts_total", "function" => function, "class" => class)
        .increment(1);
}

pub(crate) fn retry(function: &'static str, class: Option<ErrorClass>, delay: Duration) {
    let class = class.map_or("unclassified", ErrorClass::name);
    metrics::counter!("ai_retry_retries_total", "function" => function, "class" => class)
        .increment(1);
    metrics::histogram!("ai_retry_sleep_seconds", "function" => function)
        .record(delay.as_secs_f64());
}

pub(crate) fn give_up(function: &'static str, reason: GiveUp) {
    metrics::counter!("ai_retry_give_ups_total", "function" => function, "reason" => reason.name())
        .increment(1);
}

pub(crate) fn limiter_wait(waited: Duration) {
    metrics::histogram!("ai_retry_limiter_wait_seconds").record(waited.as_secs_f64());
}
