//! A real `redis-server` for a test: on a free loopback port, persistence off,
//! stopped by its pid when dropped; it can be killed, restarted empty on the
//! same port, and paused.

#![allow(dead_code, reason = "each test file uses part of this")]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one on a free port. `.ci/run` installs `redis-server` (Debian's
    /// package); without it this panics saying so.
    pub fn start() -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
        };
        server.restart();
        server
    }

    /// A port nothing listens on, for a Redis that is down from the start.
    pub fn unused_port() -> u16 {
        free_port()
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Starts it (again) on its port, empty, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--protected-mode", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server (Debian package redis-server; .ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server on port {} did not answer in 10 s", self.port);
    }

    /// Kills it (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the process stalls, connections stay open, nothing answers.
    pub fn stop(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT after [`stop`](RedisServer::stop).
    pub fn resume(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        signal_pid(self.pid(), signal);
    }

    /// The server's process id, to signal from another thread.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// `CLIENT PAUSE ms WRITE`: PING still answers, every script waits that
    /// long — and then runs.
    pub fn pause_writes(&self, ms: u64) {
        self.query(redis::cmd("CLIENT").arg("PAUSE").arg(ms).arg("WRITE"));
    }

    /// `CONFIG SET name value`.
    pub fn config_set(&self, name: &str, value: &str) {
        self.query(redis::cmd("CONFIG").arg("SET").arg(name).arg(value));
    }

    /// `FLUSHALL`: every key gone, as after an expiry.
    pub fn flush(&self) {
        self.query(&redis::cmd("FLUSHALL"));
    }

    /// One field of a hash, if there.
    pub fn hget(&self, key: &str, field: &str) -> Option<String> {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client.get_connection().expect("connection");
        redis::cmd("HGET")
            .arg(key)
            .arg(field)
            .query(&mut conn)
            .expect("HGET")
    }

    /// How many clients are connected, this query's own included.
    pub fn clients(&self) -> usize {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client.get_connection().expect("connection");
        let list: String = redis::cmd("CLIENT")
            .arg("LIST")
            .query(&mut conn)
            .expect("CLIENT LIST");
        list.lines().count()
    }

    fn query(&self, cmd: &redis::Cmd) {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client.get_connection().expect("connection");
        let _: () = cmd.query(&mut conn).expect("the command");
    }

    /// `CLIENT PAUSE ms ALL`: every client's commands wait that long.
    pub fn pause(&self, ms: u64) {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client.get_connection().expect("connection");
        let _: () = redis::cmd("CLIENT")
            .arg("PAUSE")
            .arg(ms)
            .arg("ALL")
            .query(&mut conn)
            .expect("CLIENT PAUSE");
    }

    /// The keys it holds.
    pub fn keys(&self) -> Vec<String> {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client.get_connection().expect("connection");
        redis::cmd("KEYS").arg("*").query(&mut conn).expect("KEYS")
    }

    /// The time to live of `key`, in milliseconds (-1 none, -2 no key).
    pub fn pttl(&self, key: &str) -> i64 {
        let client = redis::Client::open(self.url()).expect("url");
        let mut conn = client.get_connection().expect("connection");
        redis::cmd("PTTL").arg(key).query(&mut conn).expect("PTTL")
    }

    fn ping(&self) -> bool {
        if TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            return false;
        }
        let Ok(client) = redis::Client::open(self.url()) else {
            return false;
        };
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
            return false;
        };
        redis::cmd("PING").query::<String>(&mut conn).is_ok()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `kill -SIGNAL pid`: `-STOP` stalls a server, `-CONT` resumes it.
pub fn signal_pid(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {signal} {pid}");
}

fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("a free loopback port");
    listener.local_addr().expect("its address").port()
}
