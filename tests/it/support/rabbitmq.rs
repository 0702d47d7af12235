//! A real RabbitMQ broker (Debian `rabbitmq-server` 3.10, with `rabbitmq_management`) for one
//! test: its own node name, data directory, Erlang cookie and ports on loopback, and its own
//! `epmd`; both stopped by pid on drop. `.ci/install-rabbitmq.sh` installs it.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::free_port;

const SERVER: &str = "/usr/lib/rabbitmq/bin/rabbitmq-server";
const EPMD: &str = "/usr/bin/epmd";
/// The broker user the tests (and the bot's auth profile) log in as.
pub const USER: &str = "deckhand";
/// Its password: a test-only value.
pub const PASSWORD: &str = "it-rabbit-pass-7f3c";

pub struct RabbitMq {
    broker: Option<Child>,
    epmd: Option<Child>,
    pub amqp_port: u16,
    pub management_port: u16,
    dir: tempfile::TempDir,
}

fn require(path: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: run .ci/install-rabbitmq.sh (installs the Debian package rabbitmq-server; CI runs it)"
    );
}

impl RabbitMq {
    /// Starts a broker and waits until its management API answers (at most 90 s).
    pub async fn start() -> RabbitMq {
        require(SERVER);
        require(EPMD);
        let dir = tempfile::tempdir().expect("temp dir");
        let (amqp_port, management_port, dist_port, epmd_port) =
            (free_port(), free_port(), free_port(), free_port());
        std::fs::write(
            dir.path().join("rabbitmq.conf"),
            format!(
                "listeners.tcp.default = 127.0.0.1:{amqp_port}\n\
                 management.tcp.port = {management_port}\n\
                 management.tcp.ip = 127.0.0.1\n\
                 default_user = {USER}\n\
                 default_pass = {PASSWORD}\n\
                 default_user_tags.administrator = true\n"
            ),
        )
        .expect("rabbitmq.conf");
        std::fs::write(
            dir.path().join("enabled_plugins"),
            "[rabbitmq_management].\n",
        )
        .expect("enabled_plugins");
        let log = |name: &str| std::fs::File::create(dir.path().join(name)).expect("log file");
        // Our own epmd on its own port: the node registers there, and we stop it by its pid.
        let epmd = Command::new(EPMD)
            .args(["-port", &epmd_port.to_string(), "-address", "127.0.0.1"])
            .stdout(Stdio::null())
            .stderr(log("epmd.log"))
            .spawn()
            .expect("epmd starts");
        let p = |name: &str| dir.path().join(name);
        // RUNNING_UNDER_SYSTEMD makes the script `exec erl`: the child's pid is the broker's.
        let broker = Command::new(SERVER)
            .env("HOME", dir.path())
            .env("ERL_EPMD_PORT", epmd_port.to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODENAME", format!("it{amqp_port}@localhost"))
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env("RABBITMQ_MNESIA_BASE", p("mnesia"))
            .env("RABBITMQ_LOG_BASE", p("log"))
            .env("RABBITMQ_PLUGINS_EXPAND_DIR", p("plugins"))
            .env("RABBITMQ_CONFIG_FILE", p("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", p("enabled_plugins"))
            .env("RABBITMQ_PID_FILE", p("rabbitmq.pid"))
            .env("RUNNING_UNDER_SYSTEMD", "true")
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(log("broker.log"))
            .stderr(log("broker.err"))
            .spawn()
            .expect("rabbitmq-server starts");
        let mut rabbit = RabbitMq {
            broker: Some(broker),
            epmd: Some(epmd),
            amqp_port,
            management_port,
            dir,
        };
        rabbit.wait_ready().await;
        rabbit
    }

    pub fn management_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.management_port)
    }

    /// The AMQP URI with the test user's credentials (for the test's own clients only).
    pub fn amqp_uri(&self) -> String {
        format!("amqp://{USER}:{PASSWORD}@127.0.0.1:{}/%2f", self.amqp_port)
    }

    /// The broker's error lines and the last lines of its output, for a failure message.
    fn logs(&self) -> String {
        let out = std::fs::read_to_string(self.dir.path().join("broker.log")).unwrap_or_default();
        let err = std::fs::read_to_string(self.dir.path().join("broker.err")).unwrap_or_default();
        let errors: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("[error]") || l.contains("rror") || l.contains("eaddrinuse"))
            .take(40)
            .collect();
        let lines: Vec<&str> = out.lines().collect();
        let tail = &lines[lines.len().saturating_sub(30)..];
        format!(
            "error lines:\n{}\n--- last output:\n{}\n--- stderr:\n{err}",
            errors.join("\n"),
            tail.join("\n")
        )
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(r) = http
                .get(format!("{}/api/overview", self.management_url()))
                .basic_auth(USER, Some(PASSWORD))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            if let Some(child) = self.broker.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("rabbitmq-server exited ({status}):\n{}", self.logs());
            }
            assert!(
                Instant::now() < deadline,
                "RabbitMQ not ready in 90 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Management API GET as the test user (the test's own view, to compare with the bot's).
    pub async fn management_get(&self, path: &str) -> serde_json::Value {
        reqwest::Client::new()
            .get(format!("{}{path}", self.management_url()))
            .basic_auth(USER, Some(PASSWORD))
            .send()
            .await
            .expect("management API answers")
            .json()
            .await
            .expect("management API JSON")
    }

    /// Stops the broker now (by pid) and waits until it is gone.
    pub fn stop(&mut self) {
        for child in [self.broker.take(), self.epmd.take()].into_iter().flatten() {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RabbitMq {
    fn drop(&mut self) {
        self.stop();
    }
}
