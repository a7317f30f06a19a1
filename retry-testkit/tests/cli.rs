//! The binary as a user runs it: `--help`, `--version`, and one clear line for
//! bad input.

use std::process::Command;

fn testkit(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_retry-testkit"))
        .args(args)
        .output()
        .expect("the binary runs")
}

#[test]
fn help_and_version() {
    let help = testkit(&["--help"]);
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--port",
        "--script",
        "--then",
        "--chaos",
        "--rate",
        "--burst",
        "--latency",
    ] {
        assert!(text.contains(option), "{option} missing from --help");
    }
    let version = testkit(&["--version"]);
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("retry-testkit {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    for (args, said) in [
        (&["--port", "99999"][..], "99999 is not in 0..=65535"),
        (
            &["--script", "100"],
            "`100` is not an error status (400 to 599)",
        ),
        (
            &["--script", "should-retry=true:9999"],
            "`9999` is not an error status",
        ),
        (&["--script", "nope"], "unknown fault `nope`"),
        (&["--burst", "5"], "--rate"),
        (&["5"], "unexpected argument '5'"),
    ] {
        let output = testkit(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        let first = stderr.lines().next().unwrap_or_default();
        assert!(first.starts_with("error: "), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
        // The error, the usage line and a pointer to --help; never the help itself.
        assert!(stderr.lines().count() <= 8, "{args:?}: {stderr}");
    }
}

#[test]
fn a_port_in_use_says_what_to_do() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = testkit(&["--port", &port]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!(
            "retry-testkit: cannot listen on 127.0.0.1:{port}: it is in use; --port 0 picks a free port"
        )
    );
}
