//! Nothing a server sends can take the process down: every example, run as a
//! user runs it, against an error body and an answer that never end — its
//! peak resident memory read from `/proc` while it runs, the bytes the server
//! managed to send counted — and against a base URL that holds a key.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use retry_testkit::{Config, Fault, TestServer};

/// What a run of an example showed.
struct Run {
    code: Option<i32>,
    stderr: String,
    /// The most resident memory it ever held (`VmHWM`), in KiB.
    peak_kib: u64,
    took: Duration,
}

impl Run {
    fn last_line(&self) -> &str {
        self.stderr.lines().last().unwrap_or_default()
    }
}

#[derive(Clone, Copy)]
enum Api {
    OpenAi,
    Anthropic,
}

const EXAMPLES: [(&str, Api); 5] = [
    ("openai_chat", Api::OpenAi),
    ("anthropic_chat", Api::Anthropic),
    ("blocking_chat", Api::OpenAi),
    ("stream_chat", Api::OpenAi),
    ("async_openai_chat", Api::OpenAi),
];

/// The variables that point `api`'s example at `base_url` with a key.
fn pointed_at(api: Api, base_url: String) -> Vec<(&'static str, String)> {
    match api {
        Api::OpenAi => vec![
            ("OPENAI_API_KEY", "sk-test-not-a-real-key".into()),
            ("OPENAI_BASE_URL", base_url),
        ],
        Api::Anthropic => vec![
            ("ANTHROPIC_API_KEY", "sk-ant-test".into()),
            ("ANTHROPIC_BASE_URL", base_url),
        ],
    }
}

fn base_url(api: Api, server: &TestServer) -> String {
    match api {
        Api::OpenAi => server.openai_base_url(),
        Api::Anthropic => server.anthropic_base_url(),
    }
}

/// Runs example `name` with `envs`, watching its peak resident memory.
fn watched(name: &str, envs: &[(&str, String)]) -> Run {
    let mut child = Command::new(common::example(name))
        .arg("hello")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("REDIS_URL")
        .env_remove("AI_RETRY_MAX_BODY")
        .envs(envs.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example runs");
    let mut stderr = child.stderr.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let started = Instant::now();
    let mut peak_kib = 0;
    let status = loop {
        peak_kib = peak_kib.max(peak_rss_kib(child.id()));
        if let Some(status) = child.try_wait().expect("the child") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("{name} still running after 60 s");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stderr: reader.join().expect("stderr"),
        peak_kib,
        took: started.elapsed(),
    }
}

/// `VmHWM` of `/proc/PID/status`: the peak resident set so far, in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|kib| kib.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn assert_one_error_line(name: &str, run: &Run) {
    assert_eq!(run.code, Some(1), "{name}: {}", run.stderr);
    assert!(run.took < Duration::from_secs(40), "{name}: {:?}", run.took);
    assert!(
        run.peak_kib < 100 * 1024,
        "{name}: peak resident memory {} KiB",
        run.peak_kib
    );
    let errors = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("error"))
        .count();
    assert_eq!(errors, 1, "{name}: {}", run.stderr);
    assert!(
        run.last_line().starts_with("error: "),
        "{name}: {}",
        run.stderr
    );
}

#[test]
fn an_endless_error_body_is_read_to_64_kib_at_every_attempt() {
    for (name, api) in EXAMPLES {
        let server = TestServer::start_in_thread(Config::script(vec![Fault::Endless(502); 4]))
            .expect("server");
        let run = watched(name, &pointed_at(api, base_url(api, &server)));
        assert_one_error_line(name, &run);
        // A 502 is retried: four attempts, each read to 64 KiB and no further.
        assert_eq!(server.requests().len(), 4, "{name}: {}", run.stderr);
        if name != "async_openai_chat" {
            assert!(
                run.last_line().contains("(body cut at 64 KiB)"),
                "{name}: {}",
                run.last_line()
            );
        }
        // What the server got out is the four 64 KiB reads plus what the
        // loopback sockets buffered: not the gigabytes it would have sent.
        let sent = server.endless_bytes();
        assert!(sent < 64 << 20, "{name}: the server sent {sent} bytes");
    }
}

#[test]
fn an_endless_answer_stops_at_max_body_and_is_not_retried() {
    for (name, api) in EXAMPLES {
        let server =
            TestServer::start_in_thread(Config::script([Fault::Endless(200)])).expect("server");
        let mut envs = pointed_at(api, base_url(api, &server));
        envs.push(("AI_RETRY_MAX_BODY", "2MiB".into()));
        let run = watched(name, &envs);
        assert_one_error_line(name, &run);
        assert!(
            run.last_line()
                .starts_with("error: the answer is larger than 2 MiB (--max-body)"),
            "{name}: {}",
            run.last_line()
        );
        assert_eq!(server.requests().len(), 1, "{name}: not retried");
    }
}

#[test]
fn the_default_max_body_is_16_mib() {
    let server =
        TestServer::start_in_thread(Config::script([Fault::Endless(200)])).expect("server");
    let run = watched(
        "openai_chat",
        &pointed_at(Api::OpenAi, server.openai_base_url()),
    );
    assert_one_error_line("openai_chat", &run);
    assert!(
        run.last_line()
            .starts_with("error: the answer is larger than 16 MiB"),
        "{}",
        run.last_line()
    );
}

#[test]
fn a_key_in_the_base_url_is_sent_but_never_shown() {
    const SECRET: &str = "sk-gateway-secret-42";
    for (name, api) in EXAMPLES {
        // Every attempt's connection dropped: each failure is reqwest's error,
        // which quotes the URL.
        let server =
            TestServer::start_in_thread(Config::script(vec![Fault::Drop; 4])).expect("server");
        let base = format!("{}?key={SECRET}", base_url(api, &server));
        let run = watched(name, &pointed_at(api, base));
        assert_eq!(run.code, Some(1), "{name}: {}", run.stderr);
        assert!(!run.stderr.contains(SECRET), "{name}: {}", run.stderr);
        assert!(
            run.stderr.contains("key=REDACTED"),
            "{name}: {}",
            run.stderr
        );
        // The query went where the gateway expects it: after the API's path.
        let requests = server.requests();
        assert_eq!(requests.len(), 4, "{name}: {}", run.stderr);
        assert!(
            requests.iter().all(|r| r.api.is_some()),
            "{name}: {:?}",
            requests.iter().map(|r| &r.path).collect::<Vec<_>>()
        );
    }
}
