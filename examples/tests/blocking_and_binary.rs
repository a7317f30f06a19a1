//! The blocking client, and the `openai_chat` program run as a user runs it,
//! with and without `REDIS_URL`.

mod common;
#[path = "../../retry-runtime/tests/support/redis_server.rs"]
mod redis_server;

use std::process::Command;

use common::example;

use ai_retry_examples::blocking::BlockingOpenAi;
use retry_testkit::{Config, Fault, Hint, TestServer, answer_for};

#[test]
fn the_blocking_client_retries_too() {
    let server = TestServer::start_in_thread(Config::script([
        Fault::RateLimit(Hint::RetryAfterMs(100.0)),
        Fault::Status(502),
        Fault::Ok,
    ]))
    .unwrap();
    let client = BlockingOpenAi::new(
        &server.openai_base_url(),
        None,
        "gpt-4o-mini",
        std::time::Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(client.chat("sync").unwrap(), answer_for("sync"));
    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].at - requests[0].at >= std::time::Duration::from_millis(100));
}

fn run_example(name: &str, envs: &[(&str, &str)]) -> std::process::Output {
    let mut command = Command::new(example(name));
    command
        .arg("hello from the test")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("REDIS_URL");
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("the example runs")
}

#[test]
fn openai_chat_with_no_key_retries_and_answers() {
    let output = run_example("openai_chat", &[]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(stdout.trim(), answer_for("hello from the test"));
    assert!(
        stderr.contains("no OPENAI_API_KEY set: using retry-testkit"),
        "{stderr}"
    );
    let retries: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("retry: "))
        .collect();
    assert_eq!(retries.len(), 2, "{stderr}");
    assert!(
        retries[0]
            .starts_with("retry: attempt 1/4 failed (RateLimit, server asked 1 s): HTTP 429: "),
        "{stderr}"
    );
    assert!(
        retries[1].starts_with("retry: attempt 2/4 failed (Overloaded): HTTP 503: "),
        "{stderr}"
    );
}

#[test]
fn a_final_failure_is_one_line_and_exit_1_with_no_secret() {
    let output = run_example(
        "openai_chat",
        &[
            ("OPENAI_API_KEY", "sk-test-SECRET-123"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:1/v1"),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(output.stdout.is_empty());
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].ends_with("(gave up after attempt 4 of 4: no attempts left)"),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("retry: ")).count(),
        3,
        "{stderr}"
    );
    assert!(!stderr.contains("SECRET"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn the_other_examples_answer_with_no_key() {
    for name in ["anthropic_chat", "blocking_chat", "stream_chat"] {
        let output = run_example(name, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        assert_eq!(
            String::from_utf8_lossy(&output.stdout).trim(),
            answer_for("hello from the test"),
            "{name}"
        );
        assert_eq!(
            stderr.lines().filter(|l| l.starts_with("retry: ")).count(),
            2,
            "{name}: {stderr}"
        );
    }
}

#[test]
fn with_redis_url_the_limiter_is_shared_under_a_name_without_the_key() {
    let redis = redis_server::RedisServer::start();
    let server = TestServer::start_in_thread(Config::script([Fault::Ok])).unwrap();
    let output = run_example(
        "openai_chat",
        &[
            ("REDIS_URL", &redis.url()),
            ("OPENAI_API_KEY", "sk-fleet-secret"),
            ("OPENAI_BASE_URL", &server.openai_base_url()),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("sharing the rate limiter through REDIS_URL")
            && stderr.contains("(Shared)"),
        "{stderr}"
    );
    let keys = redis.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].contains(&server.openai_base_url()), "{keys:?}");
    assert!(!keys[0].contains("sk-fleet-secret") && !stderr.contains("sk-fleet-secret"));
}

#[test]
fn with_redis_down_the_example_still_answers() {
    let port = redis_server::RedisServer::unused_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let output = run_example("openai_chat", &[("REDIS_URL", &url)]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("(Degraded)"), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        answer_for("hello from the test")
    );
}

#[test]
fn an_empty_key_and_base_url_mean_unset() {
    let output = run_example(
        "openai_chat",
        &[("OPENAI_API_KEY", ""), ("OPENAI_BASE_URL", "")],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("no OPENAI_API_KEY set"), "{stderr}");
}

#[test]
fn giving_up_says_why() {
    // 429 asking for 90 s, above the example's max_delay of 60 s.
    let server = TestServer::start_in_thread(Config::script([Fault::RateLimit(
        Hint::RetryAfterSecs(90.0),
    )]))
    .unwrap();
    let output = run_example(
        "openai_chat",
        &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", &server.openai_base_url()),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr
            .lines()
            .any(|line| line.starts_with("error: HTTP 429: ")
                && line.ends_with(
                    "(gave up after attempt 1 of 4: the server asks for 90 s, above max_delay)"
                )),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn every_example_answers_help_version_and_bad_input() {
    for name in [
        "openai_chat",
        "anthropic_chat",
        "blocking_chat",
        "stream_chat",
        "async_openai_chat",
        "chaos",
        "load",
    ] {
        let run = |arg: &str| {
            Command::new(example(name))
                .arg(arg)
                .env_remove("OPENAI_API_KEY")
                .env_remove("ANTHROPIC_API_KEY")
                .output()
                .expect("the example runs")
        };
        let help = run("--help");
        let text = String::from_utf8_lossy(&help.stdout);
        assert!(help.status.success(), "{name} --help");
        assert!(text.contains(&format!("Usage: {name}")), "{name}: {text}");
        let version = run("--version");
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            format!("{name} {}", env!("CARGO_PKG_VERSION"))
        );
        // Bad input: one error line (and clap's pointer to --help), exit 2, no request sent.
        let bad = run("--bogus");
        let stderr = String::from_utf8_lossy(&bad.stderr);
        assert_eq!(bad.status.code(), Some(2), "{name}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert_eq!(
            first, "error: unexpected argument '--bogus' found",
            "{name}"
        );
        // clap's error, a tip, the usage line and a pointer to --help; never the help itself.
        assert!(stderr.lines().count() <= 8, "{name}: {stderr}");
        assert!(!stderr.contains("retry-testkit at"), "{name}: {stderr}");
    }
}

#[test]
fn the_timeout_option_turns_a_hang_into_a_timeout() {
    let server = TestServer::start_in_thread(Config::script([
        Fault::Hang(std::time::Duration::from_secs(30)),
        Fault::Ok,
    ]))
    .unwrap();
    let output = Command::new(example("openai_chat"))
        .args(["--timeout", "300ms", "hello from the test"])
        .env("OPENAI_API_KEY", "sk-test")
        .env("OPENAI_BASE_URL", server.openai_base_url())
        .env_remove("REDIS_URL")
        .output()
        .expect("the example runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.starts_with("retry: attempt 1/4 failed (Timeout): "),
        "{stderr}"
    );
    assert_eq!(server.requests().len(), 2);
}
