//! `cargo bench --bench fleet`: a fleet of separate OS processes — each one
//! `load`, the `openai_chat` client's policy — sharing one API key on
//! `retry-testkit`'s realistic rate-limit mode (20 requests/s, burst 1), with
//! each process's own limiter and with the limiter shared through a real
//! `redis-server` (`REDIS_URL`); then the faults: Redis killed 2 s into a
//! sustained storm, Redis paused (SIGSTOP) for 5 s 2 s into it, in one process
//! and across processes, and one `retry-after: 86400` in a steady load; token
//! storms (OpenAI tokens a minute enforced per second and in a minute's
//! bucket, Anthropic input and output tokens, answers that take 3 s) and a
//! cold start of two processes; then the cost of a shared turn on loopback.
//!
//! Needs `redis-server` (Debian's package) and builds the `load` example first.

#[path = "../retry-runtime/tests/support/redis_server.rs"]
mod redis_server;
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ai_retry::RateLimiter;
use ai_retry_examples::anthropic::Anthropic;
use ai_retry_examples::load;
use ai_retry_examples::openai::OpenAi;
use redis_server::RedisServer;
use retry_testkit::{Config, Fault, Hint, RateLimit, TestServer, TokenLimit};

const RATE: f64 = 20.0;

/// Long enough for 100 processes to start on two cores (TLS roots, runtime,
/// Redis connection) before their calls begin together.
const SET_UP: Duration = Duration::from_millis(1500);

/// The key's server, and what the fleet's calls send it.
#[derive(Clone)]
struct Key {
    server: Config,
    /// The calls go to the Anthropic Messages API, not OpenAI's.
    anthropic: bool,
    /// Prompt sizes in tokens (call i's a function of i across the fleet).
    sizes: Option<(u32, u32)>,
}

impl Key {
    /// `RATE` requests a second, burst 1.
    fn requests() -> Key {
        Key {
            server: Config::rate_limited(RateLimit::new(RATE, 1)),
            anthropic: false,
            sizes: None,
        }
    }

    /// Token limits only, prompts of 200 to 2,000 tokens.
    fn tokens(limit: TokenLimit, anthropic: bool) -> Key {
        Key {
            server: Config::token_limited(limit),
            anthropic,
            sizes: Some((200, 2000)),
        }
    }

    /// The least time the key's limits allow the fleet's calls (N / R for
    /// requests; for tokens, what the calls spend beyond the first bucket, at
    /// the limit), and the answer's time once.
    fn ideal(&self, fleet: Fleet) -> Duration {
        let latency = self.server.latency;
        let Some(limit) = self.server.tokens else {
            return Duration::from_secs_f64(fleet.calls() as f64 / RATE) + latency;
        };
        let timeout = Duration::from_secs(1);
        let nowhere = "http://127.0.0.1:9";
        let costs: Vec<ai_retry::Cost> = (0..fleet.calls())
            .map(|i| {
                let prompt = load::prompt(i, self.sizes);
                match self.anthropic {
                    true => Anthropic::new(nowhere, None, "claude", timeout)
                        .expect("client")
                        .cost_of(&prompt),
                    false => OpenAi::new(nowhere, None, "gpt", timeout)
                        .expect("client")
                        .cost_of(&prompt),
                }
            })
            .collect();
        load::token_ideal(&limit, &costs) + latency
    }
}

/// How the fleet's processes start.
#[derive(Clone, Copy)]
struct Fleet {
    processes: usize,
    /// Calls each process makes (all at once within it).
    calls: usize,
    /// Processes started per second; `None`: all at once.
    arrival: Option<f64>,
    /// Calls started per second within each process; `None`: all at once.
    call_arrival: Option<f64>,
    /// The processes start first and their calls begin together [`SET_UP`]
    /// later: a storm hits a fleet that is running. Without, the calls
    /// begin as their processes start, and 100 process starts on two cores
    /// can hold Redis's answers past the stall bound.
    set_up_first: bool,
}

impl Fleet {
    const fn processes(processes: usize, arrival: Option<f64>) -> Fleet {
        Fleet {
            processes,
            calls: 1,
            arrival,
            call_arrival: None,
            set_up_first: false,
        }
    }

    /// The calls begin together once the processes are up (the field of that name).
    const fn set_up_first(self) -> Fleet {
        Fleet {
            set_up_first: true,
            ..self
        }
    }

    const fn one_process(calls: usize, call_arrival: Option<f64>) -> Fleet {
        Fleet {
            processes: 1,
            calls,
            arrival: None,
            call_arrival,
            set_up_first: false,
        }
    }

    fn calls(&self) -> usize {
        self.processes * self.calls
    }
}

/// What goes wrong during a run, and when.
#[derive(Clone, Copy)]
enum Trouble {
    None,
    /// Redis is killed this far into the run.
    KillRedis(Duration),
    /// Redis is stopped (SIGSTOP) this far into the run, for this long.
    PauseRedis(Duration, Duration),
    /// The next request this far into the run is refused with `retry-after: 86400`.
    DayLongHint(Duration),
}

struct Outcome {
    ok: usize,
    requests: usize,
    refused: usize,
    wall: Duration,
    /// Each process's run, sorted.
    runs: Vec<Duration>,
    /// With a day-long hint: requests between it and the first success after
    /// it, and how long that took.
    reopened: Option<(usize, Duration)>,
}

fn load_binary() -> std::path::PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--release",
            "--example",
            "load",
            "-p",
            "ai-retry-examples",
        ])
        .status()
        .expect("cargo");
    assert!(status.success(), "building the load example failed");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("release/examples/load")
}

/// Process `index` of the fleet: its calls are the fleet's calls from
/// `index × calls` on.
fn spawn(
    load: &std::path::Path,
    fleet: Fleet,
    index: usize,
    key: &Key,
    server: &TestServer,
    redis: Option<&str>,
    start_at: Option<SystemTime>,
) -> Child {
    let mut command = Command::new(load);
    command
        .args(["--calls", &fleet.calls.to_string()])
        .args(["--first", &(index * fleet.calls).to_string()])
        .env_remove("REDIS_URL")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    match key.anthropic {
        true => command
            .arg("--anthropic")
            .env("ANTHROPIC_API_KEY", "sk-fleet-one-key")
            .env("ANTHROPIC_BASE_URL", server.anthropic_base_url()),
        false => command
            .env("OPENAI_API_KEY", "sk-fleet-one-key")
            .env("OPENAI_BASE_URL", server.openai_base_url()),
    };
    if let Some((low, high)) = key.sizes {
        command.args(["--prompt-tokens", &format!("{low}..{high}")]);
    }
    if let Some(per_second) = fleet.call_arrival {
        command.args(["--arrival", &per_second.to_string()]);
    }
    if let Some(redis) = redis {
        command.env("REDIS_URL", redis);
    }
    if let Some(at) = start_at {
        let ms = at
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_millis();
        command.args(["--start-at", &ms.to_string()]);
    }
    command.spawn().expect("the load example")
}

/// Runs the fleet against a fresh server, with `trouble` on the way.
fn run(
    load: &std::path::Path,
    fleet: Fleet,
    redis: Option<&mut RedisServer>,
    trouble: Trouble,
) -> Outcome {
    run_on(load, &Key::requests(), fleet, redis, trouble)
}

/// [`run`] against `key`'s server.
fn run_on(
    load: &std::path::Path,
    key: &Key,
    fleet: Fleet,
    mut redis: Option<&mut RedisServer>,
    trouble: Trouble,
) -> Outcome {
    let server = TestServer::start_in_thread(key.server.clone()).expect("loopback server");
    let url = redis.as_ref().map(|r| r.url());
    let redis_pid = redis.as_ref().map(|r| r.pid());
    let start = Instant::now();
    let calls_begin = fleet
        .set_up_first
        .then(|| (start + SET_UP, SystemTime::now() + SET_UP));
    let wait_until = |after: Duration| {
        std::thread::sleep((start + after).saturating_duration_since(Instant::now()))
    };
    let mut outcome = std::thread::scope(|scope| {
        match trouble {
            Trouble::PauseRedis(after, span) => {
                let pid = redis_pid.expect("a Redis to pause");
                scope.spawn(move || {
                    wait_until(after);
                    redis_server::signal_pid(pid, "-STOP");
                    std::thread::sleep(span);
                    redis_server::signal_pid(pid, "-CONT");
                });
            }
            Trouble::DayLongHint(after) => {
                let server = &server;
                scope.spawn(move || {
                    wait_until(after);
                    server.push([Fault::RateLimit(Hint::RawRetryAfter("86400".into()))]);
                });
            }
            Trouble::None | Trouble::KillRedis(_) => {}
        }
        let mut children = Vec::new();
        let mut killed = false;
        for i in 0..fleet.processes {
            if let Some(per_second) = fleet.arrival {
                wait_until(Duration::from_secs_f64(i as f64 / per_second));
            }
            if let (Trouble::KillRedis(after), Some(redis)) = (trouble, redis.as_deref_mut())
                && !killed
                && start.elapsed() >= after
            {
                redis.kill();
                killed = true;
            }
            let began = calls_begin.map_or_else(Instant::now, |(at, _)| at);
            let start_at = calls_begin.map(|(_, at)| at);
            let child = spawn(load, fleet, i, key, &server, url.as_deref(), start_at);
            // A thread waits for each process: its run ends when it exits.
            children.push(scope.spawn(move || reap(began, child)));
        }
        let mut outcome = Outcome {
            ok: 0,
            requests: 0,
            refused: 0,
            wall: Duration::ZERO,
            runs: Vec::new(),
            reopened: None,
        };
        for waiter in children {
            let (run, ok) = waiter.join().expect("the waiter");
            outcome.runs.push(run);
            outcome.ok += ok;
        }
        outcome
    });
    outcome.wall = calls_begin.map_or(start, |(at, _)| at).elapsed();
    outcome.runs.sort();
    let requests = server.requests();
    outcome.requests = requests.len();
    outcome.refused = requests.iter().filter(|r| r.status == 429).count();
    if let Some(refusal) = requests.iter().position(|r| r.fault.contains("86400")) {
        let reopened = requests[refusal..].iter().position(|r| r.status == 200);
        outcome.reopened =
            reopened.map(|n| (n - 1, requests[refusal + n].at - requests[refusal].at));
    }
    outcome
}

/// Waits for a fleet process: how long it ran from `began`, and the
/// successes its last line of output reports.
fn reap(began: Instant, child: Child) -> (Duration, usize) {
    let output = child.wait_with_output().expect("the process ends");
    let run = began.elapsed();
    let ok = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(0);
    (run, ok)
}

fn quantile(runs: &[Duration], q: f64) -> Duration {
    runs[((runs.len() - 1) as f64 * q).round() as usize]
}

fn print(name: &str, store: &str, fleet: Fleet, o: &Outcome) {
    print_against(name, store, fleet, Key::requests().ideal(fleet), o);
}

fn print_against(name: &str, store: &str, fleet: Fleet, ideal: Duration, o: &Outcome) {
    let ideal = ideal.as_secs_f64();
    println!(
        "| {name} | {store} | {}/{} | {:.2} | {} | {:.2} s | {:.2}x | {:.2} s | {:.2} s |",
        o.ok,
        fleet.calls(),
        o.requests as f64 / o.ok.max(1) as f64,
        o.refused,
        o.wall.as_secs_f64(),
        o.wall.as_secs_f64() / ideal,
        quantile(&o.runs, 0.5).as_secs_f64(),
        quantile(&o.runs, 0.99).as_secs_f64(),
    );
}

fn print_reopened(name: &str, store: &str, fleet: Fleet, o: &Outcome) {
    let (sent, after) = o
        .reopened
        .map_or(("-".to_string(), "never".to_string()), |(n, t)| {
            (n.to_string(), format!("{:.1} s", t.as_secs_f64()))
        });
    println!(
        "| {name} | {store} | {}/{} | {sent} | {after} | {:.1} s |",
        o.ok,
        fleet.calls(),
        o.wall.as_secs_f64(),
    );
}

/// The success-path cost of a shared turn: an idle limiter on loopback Redis.
async fn turn_cost(redis: &RedisServer) -> (Duration, Duration, f64) {
    static SHARED: RateLimiter = RateLimiter::new();
    SHARED
        .share_redis(&redis.url(), "fleet:turn-cost")
        .await
        .expect("url");
    let before = evalsha_calls(redis);
    let mut times = Vec::new();
    const CALLS: usize = 2000;
    for _ in 0..CALLS {
        let asked = Instant::now();
        let turn = SHARED.turn(Duration::from_secs(1)).await.expect("a turn");
        times.push(asked.elapsed());
        SHARED.succeeded(turn);
    }
    // Let the background success reports land before counting commands.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let commands = (evalsha_calls(redis) - before) as f64 / CALLS as f64;
    times.sort();
    (quantile(&times, 0.5), quantile(&times, 0.99), commands)
}

/// Script calls Redis has run, from `INFO commandstats`.
fn evalsha_calls(redis: &RedisServer) -> u64 {
    let client = redis::Client::open(redis.url()).expect("url");
    let mut conn = client.get_connection().expect("connection");
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut conn)
        .expect("INFO");
    info.lines()
        .filter(|l| l.starts_with("cmdstat_evalsha:") || l.starts_with("cmdstat_eval:"))
        .filter_map(|l| {
            l.split("calls=")
                .nth(1)?
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// `cargo bench --bench fleet -- stall hint` runs only the sections named
/// (`storm`, `kill`, `stall`, `hint`, `tokens`, `cold`, `turn`); no name runs
/// them all.
fn wanted(section: &str) -> bool {
    let named = support::named_args();
    named.is_empty() || named.iter().any(|n| n == section)
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let load = load_binary();
    println!(
        "retry-testkit realistic rate-limit mode ({RATE} requests/s, burst 1), one API key, `load` processes, loopback"
    );
    println!(
        "| fleet | limiter | ok | requests / success | 429s | completion | vs ideal N/R | p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    if wanted("storm") {
        storms(&load);
    }
    if wanted("kill") {
        let storm = Fleet::processes(200, Some(30.0));
        let mut redis = RedisServer::start();
        let trouble = Trouble::KillRedis(Duration::from_secs(2));
        let killed = run(&load, storm, Some(&mut redis), trouble);
        print(
            "200 processes arriving 30/s",
            "shared, Redis killed at 2 s",
            storm,
            &killed,
        );
    }
    if wanted("stall") {
        stalls(&load);
    }
    if wanted("hint") {
        day_long_hint(&load);
    }
    if wanted("tokens") {
        token_storms(&load);
    }
    if wanted("cold") {
        cold_start(&load);
    }
    if wanted("turn") {
        let redis = RedisServer::start();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let (p50, p99, commands) = runtime.block_on(turn_cost(&redis));
        println!(
            "\nA shared turn on an idle limiter, loopback Redis: p50 {:.0} µs, p99 {:.0} µs; {commands:.2} Redis commands per call (the turn, and the success report sent in the background)",
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6,
        );
    }
}

/// Each process its own limiter, then one shared through Redis.
fn storms(load: &std::path::Path) {
    let fleets = [
        ("100 processes at once", Fleet::processes(100, None)),
        (
            "200 processes arriving 30/s",
            Fleet::processes(200, Some(30.0)),
        ),
    ];
    for (name, fleet) in fleets {
        let alone = run(load, fleet, None, Trouble::None);
        print(name, "each process its own", fleet, &alone);
        let mut redis = RedisServer::start();
        let shared = run(load, fleet, Some(&mut redis), Trouble::None);
        print(name, "shared through Redis", fleet, &shared);
    }
}

/// Redis stopped (SIGSTOP) for 5 s, 2 s into a storm, across processes and in
/// one process, each beside the same storm without the stall.
fn stalls(load: &std::path::Path) {
    let stall = Trouble::PauseRedis(Duration::from_secs(2), Duration::from_secs(5));
    let storm = Fleet::processes(200, Some(30.0));
    let name = "200 processes arriving 30/s";
    let mut redis = RedisServer::start();
    let shared = run(load, storm, Some(&mut redis), Trouble::None);
    print(name, "shared through Redis", storm, &shared);
    let mut redis = RedisServer::start();
    let paused = run(load, storm, Some(&mut redis), stall);
    print(name, "shared, Redis paused 5 s at 2 s", storm, &paused);
    let four = Fleet {
        processes: 4,
        calls: 50,
        arrival: None,
        call_arrival: None,
        set_up_first: false,
    };
    let name = "4 processes × 50 calls at once";
    let mut redis = RedisServer::start();
    let shared = run(load, four, Some(&mut redis), Trouble::None);
    print(name, "shared through Redis", four, &shared);
    let mut redis = RedisServer::start();
    let paused = run(load, four, Some(&mut redis), stall);
    print(name, "shared, Redis paused 5 s at 2 s", four, &paused);
    let one = Fleet::one_process(200, None);
    let name = "1 process, 200 calls at once";
    let mut redis = RedisServer::start();
    let shared = run(load, one, Some(&mut redis), Trouble::None);
    print(name, "shared through Redis", one, &shared);
    let mut redis = RedisServer::start();
    let paused = run(load, one, Some(&mut redis), stall);
    print(name, "shared, Redis paused 5 s at 2 s", one, &paused);
}

/// One `retry-after: 86400` 5 s into a steady load, in one process and across
/// processes sharing Redis: how long the key stays closed, and what is sent meanwhile.
fn day_long_hint(load: &std::path::Path) {
    let hint = Trouble::DayLongHint(Duration::from_secs(5));
    println!(
        "\nOne `429` with `retry-after: 86400` 5 s into a steady load (5 calls/s against the 20/s key; max_delay 30 s)"
    );
    println!("| load | limiter | ok | requests while closed | reopened after | completion |");
    println!("|---|---|---|---|---|---|");
    let steady = Fleet::one_process(400, Some(5.0));
    let day = run(load, steady, None, hint);
    print_reopened("1 process, 400 calls arriving 5/s", "its own", steady, &day);
    let fleet = Fleet::processes(400, Some(5.0));
    let mut redis = RedisServer::start();
    let day = run(load, fleet, Some(&mut redis), hint);
    print_reopened(
        "400 processes arriving 5/s",
        "shared through Redis",
        fleet,
        &day,
    );
}

/// 100 processes at once, one call each, against token limits: each process
/// its own limiter, then one shared through Redis.
fn token_storms(load: &std::path::Path) {
    let per_second = TokenLimit::tokens(600_000);
    let keys = [
        ("OpenAI 600k TPM per second", Key::tokens(per_second, false)),
        (
            "OpenAI 60k TPM, a minute's bucket",
            Key::tokens(
                TokenLimit::tokens(60_000).window(Duration::from_secs(60)),
                false,
            ),
        ),
        (
            "Anthropic 600k in + 300k out per minute",
            Key::tokens(TokenLimit::input_output(600_000, 300_000), true),
        ),
        ("OpenAI 600k TPM per second, answers in 3 s", {
            let mut key = Key::tokens(per_second, false);
            key.server = key.server.with_latency(Duration::from_secs(3));
            key
        }),
    ];
    let fleet = Fleet::processes(100, None).set_up_first();
    println!(
        "\nToken limits: 100 `load` processes, one call each, the calls at once once every process is up, prompts of 200 to 2,000 tokens (ideal: what the calls spend beyond the first bucket, at the limit, and one answer's time)"
    );
    println!(
        "| key | limiter | ok | requests / success | 429s | completion | vs ideal | p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (name, key) in keys {
        let ideal = key.ideal(fleet);
        let alone = run_on(load, &key, fleet, None, Trouble::None);
        print_against(name, "each process its own", fleet, ideal, &alone);
        let mut redis = RedisServer::start();
        let shared = run_on(load, &key, fleet, Some(&mut redis), Trouble::None);
        print_against(name, "shared through Redis", fleet, ideal, &shared);
    }
}

/// Two processes of 20 calls at once against a key nothing is known of yet:
/// sharing through Redis must not make the cold start worse.
fn cold_start(load: &std::path::Path) {
    let two = Fleet {
        processes: 2,
        calls: 20,
        arrival: None,
        call_arrival: None,
        set_up_first: false,
    };
    println!("\nA cold start: 2 processes × 20 calls at once, nothing known of the key");
    println!(
        "| fleet | limiter | ok | requests / success | 429s | completion | vs ideal N/R | p50 | p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let name = "2 processes × 20 calls at once";
    let alone = run(load, two, None, Trouble::None);
    print(name, "each process its own", two, &alone);
    let mut redis = RedisServer::start();
    let shared = run(load, two, Some(&mut redis), Trouble::None);
    print(name, "shared through Redis", two, &shared);
}
