//! Test support: a bot built from a fresh config and state directory, with the chosen test
//! plugin libraries copied into its plugin directory, and loaded through the real `dlopen`.

pub mod aks;
pub mod cloud;
pub mod daskhub;
pub mod moto;
pub mod rabbitmq;
pub mod registry;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use deckhand::app::App;
use deckhand::config::Config;
use deckhand::router::{Invocation, Response, Router};
use deckhand_plugin_abi::proto::Caller;
use tokio::sync::mpsc;

/// `target/debug` (or the profile dir the tests were built in): the test binary lives in its
/// `deps/` subdirectory.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary sits in target/<profile>/deps")
        .to_owned()
}

/// A library built in the target dir, by its stem (`deckhand_testplugin_echo`).
fn built_library(stem: &str) -> PathBuf {
    let file = format!(
        "{}{stem}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let path = target_dir().join(file);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` before the tests (cargo test does not build cdylibs)",
        path.display()
    );
    path
}

/// The built library of a test plugin (`echo`, `boom`, `hang`, `clash`, `wrongabi`, `cloudprobe`).
pub fn plugin_library(name: &str) -> PathBuf {
    built_library(&format!("deckhand_testplugin_{name}"))
}

/// The built library of one of Deckhand's own plugins (`aks`, `vk`).
pub fn product_plugin_library(name: &str) -> PathBuf {
    built_library(&format!("deckhand_plugin_{name}"))
}

/// A loopback port free at the time of asking (for servers started with a fixed port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// The `deckhand` binary built beside the tests.
pub fn deckhand_binary() -> PathBuf {
    let path = target_dir().join(format!("deckhand{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// Runs `deckhand ARGS --config CONFIG` with `env` added and `stdin` piped in, to the end.
/// (`DECKHAND_IT_TOKEN`, which [`config_text`] references, is set.)
pub fn run_deckhand(
    args: &[&str],
    config: &Path,
    env: &[(&str, &std::ffi::OsStr)],
    stdin: &[u8],
) -> std::process::Output {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(deckhand_binary())
        .args(args)
        .arg("--config")
        .arg(config)
        .env("DECKHAND_IT_TOKEN", "x")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("deckhand starts");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("deckhand reads its input");
    child.wait_with_output().expect("deckhand exits")
}

/// A `deckhand shell --config CONFIG` the test talks to line by line (stderr discarded).
pub struct Shell {
    pub child: std::process::Child,
    pub stdin: std::process::ChildStdin,
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
}

pub fn spawn_shell(config: &Path) -> Shell {
    use std::process::{Command, Stdio};
    let mut child = Command::new(deckhand_binary())
        .args(["shell", "--config"])
        .arg(config)
        .env("DECKHAND_IT_TOKEN", "x")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("deckhand starts");
    let stdin = child.stdin.take().expect("stdin is piped");
    let stdout = std::io::BufReader::new(child.stdout.take().expect("stdout is piped"));
    Shell {
        child,
        stdin,
        stdout,
    }
}

/// A config file in `dir` for the real binary: `libraries` copied into `dir/plugins`, state in
/// `dir/state.db`, [`config_text`] with `extra`. Returns the config's path.
pub fn write_config(dir: &Path, libraries: &[PathBuf], extra: &str) -> PathBuf {
    let plugin_dir = dir.join("plugins");
    std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
    for library in libraries {
        let name = library.file_name().expect("a library file");
        std::fs::copy(library, plugin_dir.join(name)).expect("plugin copied");
    }
    let config = dir.join("deckhand.toml");
    std::fs::write(
        &config,
        config_text(&plugin_dir, &dir.join("state.db"), extra),
    )
    .expect("config written");
    config
}

/// Base configuration for tests; `extra` is appended (more tables, approvals, ...).
pub fn config_text(plugin_dir: &Path, state: &Path, extra: &str) -> String {
    format!(
        r#"
[state]
path = "{state}"

[plugins]
dir = "{plugins}"
# The directory holds exactly the libraries a test copied in: test and product plugins alike.
prefix = "deckhand_"
default_timeout = "10s"

[plugins.config.echo]
greeting = "configured greeting"

[host.programs]
greet = "/bin/echo"
shell = "/bin/sh"

[auth_profiles.test-bearer]
kind = "bearer"
token = "${{DECKHAND_IT_TOKEN}}"

[terminal]
user_id = "local"
display_name = "Local operator"
roles = ["admin"]
channel = "terminal"
allow_yes = true

[[permissions]]
roles = ["admin"]
allow = ["*"]

[[permissions]]
roles = ["viewer"]
allow = ["echo", "*.count"]

[[permissions]]
users = ["approver-1"]
allow = ["*"]
{extra}
"#,
        state = state.display(),
        plugins = plugin_dir.display(),
    )
}

/// A bot for one test: its own directory, config, database and plugin copies.
pub struct TestBot {
    pub dir: tempfile::TempDir,
    pub app: App,
}

pub fn admin() -> Caller {
    Caller {
        user_id: "local".into(),
        display_name: "Local operator".into(),
        roles: vec!["admin".into()],
    }
}

pub fn viewer() -> Caller {
    Caller {
        user_id: "viewer-1".into(),
        display_name: "Vera Viewer".into(),
        roles: vec!["viewer".into()],
    }
}

pub fn user(id: &str, roles: &[&str]) -> Caller {
    Caller {
        user_id: id.into(),
        display_name: id.into(),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

impl TestBot {
    /// Sends `service` to the bot's host as a plugin named `plugin` declaring `capabilities`,
    /// through the real C table, outside any command. Call it off the async workers
    /// (`block_in_place`): host services block on the runtime.
    pub fn call_as_plugin(
        &self,
        plugin: &str,
        capabilities: deckhand_plugin_abi::proto::Capabilities,
        service: deckhand_plugin_abi::proto::Service,
    ) -> deckhand_plugin_abi::proto::HostResponse {
        let table = deckhand::host::services::HostTable::new(
            plugin,
            capabilities,
            self.app.host.services().clone(),
        );
        let request = serde_json::to_vec(&deckhand_plugin_abi::proto::HostRequest {
            invocation: None,
            service,
        })
        .expect("host requests serialize");
        // SAFETY: the table outlives the call; the answer buffer comes from the host and is
        // turned back into the Vec it was made from.
        let api = unsafe { &*table.api() };
        let answer = (api.call)(api.ctx, request.as_ptr(), request.len());
        let bytes = unsafe { answer.into_vec() };
        serde_json::from_slice(&bytes).expect("host answers are JSON")
    }

    pub fn new(plugins: &[&str]) -> TestBot {
        TestBot::with_config(plugins, "")
    }

    /// Starts a bot with these test plugins copied in and `extra` config appended.
    pub fn with_config(plugins: &[&str], extra: &str) -> TestBot {
        let libraries: Vec<PathBuf> = plugins.iter().map(|name| plugin_library(name)).collect();
        TestBot::with_libraries(&libraries, extra)
    }

    /// Starts a bot loading these built libraries, with `extra` config appended.
    pub fn with_libraries(libraries: &[PathBuf], extra: &str) -> TestBot {
        // SAFETY: tests set the same value in every thread; nothing reads it concurrently
        // in a way that could observe a torn write.
        unsafe { std::env::set_var("DECKHAND_IT_TOKEN", "it-secret-token") };
        let dir = tempfile::tempdir().expect("temp dir");
        let plugin_dir = dir.path().join("plugins");
        std::fs::create_dir_all(&plugin_dir).unwrap();
        for source in libraries {
            std::fs::copy(source, plugin_dir.join(source.file_name().unwrap())).unwrap();
        }
        let config_path = dir.path().join("deckhand.toml");
        std::fs::write(
            &config_path,
            config_text(&plugin_dir, &dir.path().join("state.db"), extra),
        )
        .unwrap();
        let config = Config::load(&config_path).expect("test config is valid");
        let app = App::start(config).expect("bot starts");
        TestBot { dir, app }
    }

    pub fn router(&self) -> &Arc<Router> {
        &self.app.router
    }

    pub fn plugin_dir(&self) -> PathBuf {
        self.dir.path().join("plugins")
    }

    /// Runs one command as `caller` and returns the response.
    pub async fn say_as(&self, caller: Caller, text: &str) -> Response {
        self.say_full(caller, text).await.0
    }

    pub async fn say(&self, text: &str) -> Response {
        self.say_as(admin(), text).await
    }

    /// Runs one command and also returns its progress lines and invocation id.
    pub async fn say_full(&self, caller: Caller, text: &str) -> (Response, Vec<String>, String) {
        self.say_on("test", caller, text).await
    }

    /// Runs one command arriving from `surface` (`terminal` allows `--yes`).
    pub async fn say_on(
        &self,
        surface: &str,
        caller: Caller,
        text: &str,
    ) -> (Response, Vec<String>, String) {
        let invocation = Invocation::new(surface, "test-channel", caller, text);
        let id = invocation.id.clone();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let response = self.app.router.handle(invocation, tx).await;
        let mut progress = Vec::new();
        while let Ok(line) = rx.try_recv() {
            progress.push(line);
        }
        (response, progress, id)
    }
}
