//! Real JupyterHub and Dask Gateway for the daskhub plugin's tests (installed by
//! `.ci/install-daskhub.sh`): PyPI `jupyterhub` with npm `configurable-http-proxy`, and PyPI
//! `dask-gateway-server` with its local backend, authenticating users through the hub (the
//! seed's setup: the gateway is a JupyterHub service).
//!
//! [`DaskHub::start`] starts both on free loopback ports, each in its own temp dir and process
//! group, waits until each answers, and stops them on drop (SIGTERM to the group, so the hub's
//! proxy and the gateway's proxy go too; SIGKILL after a deadline).
//!
//! Stand-ins, named as such: the hub spawns a **stand-in single-user server** (a few lines of
//! Python answering HTTP on the port JupyterHub hands it) because Jupyter Server is not
//! installed; and [`helm_stand_in`] writes a **stand-in `helm`**, since no helm binary installs
//! from the reachable registries: it records its arguments and standard input (the values
//! file) and answers as `helm upgrade --output json` does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use std::os::unix::process::CommandExt;

/// A test token: 32 hex digits from the standard library's random hasher keys.
pub fn random_hex() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    for _ in 0..2 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u64(0);
        out.push_str(&format!("{:016x}", hasher.finish()));
    }
    out
}

/// Distinct free loopback ports (held together while asked for, so none repeats).
fn free_ports<const N: usize>() -> [u16; N] {
    let listeners: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    std::array::from_fn(|i| listeners[i].local_addr().expect("bound").port())
}

fn find(program: &str, install: &str) -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.exists())
    });
    found.unwrap_or_else(|| {
        panic!("{program} is missing: run .ci/install-daskhub.sh ({install}; CI runs it)")
    })
}

/// A server process in its own process group, with its log in its directory.
struct Server {
    name: &'static str,
    child: Child,
    log: PathBuf,
}

impl Server {
    fn spawn(name: &'static str, mut command: Command, dir: &Path) -> Server {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log).expect("server log");
        let child = command
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log handle"))
            .stderr(file)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Server { name, child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal_group(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
    }

    fn stop(&mut self) {
        self.signal_group("-TERM");
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                // The group may still hold the proxy: make sure it goes too.
                self.signal_group("-KILL");
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.signal_group("-KILL");
        let _ = self.child.wait();
    }
}

pub struct DaskHub {
    dir: tempfile::TempDir,
    hub: Server,
    gateway: Server,
    /// The hub's own API (`/hub/api/...`), as the gateway reaches it in the chart.
    pub hub_url: String,
    /// The gateway's public address (its proxy): REST API and dashboards.
    pub gateway_url: String,
    /// The token of the `deckhand` JupyterHub service (admin of users and servers).
    pub admin_token: String,
    /// Token of user `ops`, the identity whose gateway clusters the bot manages.
    pub ops_token: String,
    client: http::Client,
}

/// A small blocking HTTP client over reqwest's async one (tests/it has no blocking feature).
mod http {
    pub struct Client {
        runtime: tokio::runtime::Runtime,
        inner: ::reqwest::Client,
    }

    impl Client {
        pub fn new() -> Client {
            Client {
                runtime: tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("runtime"),
                inner: ::reqwest::Client::new(),
            }
        }

        /// `(status, body)`, or `None` when nothing answers.
        pub fn send(
            &self,
            method: &str,
            url: &str,
            auth: Option<&str>,
            body: Option<&str>,
        ) -> Option<(u16, String)> {
            self.runtime.block_on(async {
                let method = ::reqwest::Method::from_bytes(method.as_bytes()).ok()?;
                let mut request = self
                    .inner
                    .request(method, url)
                    .timeout(std::time::Duration::from_secs(5));
                if let Some(auth) = auth {
                    request = request.header("authorization", auth);
                }
                if let Some(body) = body {
                    request = request.body(body.to_owned());
                }
                let response = request.send().await.ok()?;
                let status = response.status().as_u16();
                Some((status, response.text().await.unwrap_or_default()))
            })
        }
    }
}

/// The stand-in single-user server the hub spawns (see the module doc).
const SINGLE_USER_STAND_IN: &str = r#"
import os, http.server, urllib.parse
url = urllib.parse.urlparse(os.environ["JUPYTERHUB_SERVICE_URL"])
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"stand-in single-user server")
    def log_message(self, *args):
        pass
http.server.HTTPServer((url.hostname, url.port), Handler).serve_forever()
"#;

fn wait_until(
    what: &str,
    server: &mut Server,
    deadline: Duration,
    mut ready: impl FnMut() -> bool,
) {
    let end = Instant::now() + deadline;
    loop {
        if ready() {
            return;
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!(
                "{} exited ({status}) before {what}:\n{}",
                server.name,
                server.log()
            );
        }
        assert!(
            Instant::now() < end,
            "{} not {what} within {deadline:?}:\n{}",
            server.name,
            server.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl DaskHub {
    pub fn start() -> DaskHub {
        let jupyterhub = find("jupyterhub", "pip installs jupyterhub");
        find(
            "configurable-http-proxy",
            "npm installs configurable-http-proxy",
        );
        let gateway_server = find("dask-gateway-server", "pip installs dask-gateway-server");
        let dask = find(
            "dask",
            "pip installs dask-gateway, which brings distributed",
        );
        let dir = tempfile::tempdir().expect("daskhub dir");
        let hub_dir = dir.path().join("hub");
        let gateway_dir = dir.path().join("gateway");
        std::fs::create_dir_all(&hub_dir).expect("hub dir");
        std::fs::create_dir_all(&gateway_dir).expect("gateway dir");
        let [
            proxy_port,
            proxy_api_port,
            hub_port,
            gateway_api_port,
            gateway_port,
        ] = free_ports();
        let admin_token = random_hex();
        let gateway_service_token = random_hex();
        let hub_url = format!("http://127.0.0.1:{hub_port}");
        let config = format!(
            r#"
import sys
c.JupyterHub.ip = "127.0.0.1"
c.JupyterHub.port = {proxy_port}
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = {hub_port}
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api_port}"
c.ConfigurableHTTPProxy.pid_file = "{dir}/proxy.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allow_all = True
c.JupyterHub.spawner_class = "simple"
c.Spawner.cmd = [sys.executable, "-c", {stand_in:?}]
c.JupyterHub.db_url = "sqlite:///{dir}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{dir}/cookie_secret"
c.JupyterHub.pid_file = "{dir}/jupyterhub.pid"
c.JupyterHub.cleanup_servers = True
c.JupyterHub.services = [
    {{"name": "deckhand", "api_token": "{admin_token}"}},
    {{"name": "dask-gateway", "api_token": "{gateway_service_token}"}},
]
c.JupyterHub.load_roles = [
    {{"name": "deckhand", "scopes": ["admin:users", "admin:servers", "tokens"], "services": ["deckhand"]}},
    {{"name": "dask-gateway", "scopes": ["read:users"], "services": ["dask-gateway"]}},
]
"#,
            dir = hub_dir.display(),
            stand_in = SINGLE_USER_STAND_IN,
        );
        std::fs::write(hub_dir.join("jupyterhub_config.py"), config).expect("hub config");
        let mut command = Command::new(&jupyterhub);
        command.args(["-f", "jupyterhub_config.py"]);
        let mut hub = Server::spawn("jupyterhub", command, &hub_dir);

        let gateway_config = format!(
            r#"
c.DaskGateway.address = "127.0.0.1:{gateway_api_port}"
c.Proxy.address = "127.0.0.1:{gateway_port}"
# Scheduler traffic (TLS) shares the HTTP port, as the client expects by default.
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.UnsafeLocalBackend.clusters_directory = "{dir}/clusters"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.JupyterHubAuthenticator"
c.JupyterHubAuthenticator.jupyterhub_api_token = "{gateway_service_token}"
c.JupyterHubAuthenticator.jupyterhub_api_url = "{hub_url}/hub/api"
# distributed 2026 has `dask scheduler` / `dask worker`, no dask-scheduler scripts.
c.ClusterConfig.scheduler_cmd = ["{dask}", "scheduler"]
c.ClusterConfig.worker_cmd = ["{dask}", "worker"]
# Look at clusters and workers often, so a test does not wait for the 15 s defaults.
c.UnsafeLocalBackend.cluster_heartbeat_period = 1
c.UnsafeLocalBackend.cluster_status_period = 0.5
c.UnsafeLocalBackend.worker_status_period = 0.5
"#,
            dir = gateway_dir.display(),
            dask = dask.display(),
        );
        std::fs::write(gateway_dir.join("gateway_config.py"), gateway_config)
            .expect("gateway config");
        let mut command = Command::new(&gateway_server);
        command.args(["-f", "gateway_config.py"]);
        let mut gateway = Server::spawn("dask-gateway-server", command, &gateway_dir);

        let client = http::Client::new();
        wait_until(
            "answering /hub/api/",
            &mut hub,
            Duration::from_secs(60),
            || {
                client
                    .send("GET", &format!("{hub_url}/hub/api/"), None, None)
                    .is_some_and(|(s, _)| s == 200)
            },
        );
        let gateway_url = format!("http://127.0.0.1:{gateway_port}");
        wait_until(
            "answering /api/health",
            &mut gateway,
            Duration::from_secs(60),
            || {
                client
                    .send("GET", &format!("{gateway_url}/api/health"), None, None)
                    .is_some_and(|(s, _)| s == 200)
            },
        );
        let mut daskhub = DaskHub {
            dir,
            hub,
            gateway,
            hub_url,
            gateway_url,
            admin_token,
            ops_token: String::new(),
            client,
        };
        daskhub.add_user("ops");
        daskhub.ops_token = daskhub.user_token("ops");
        daskhub
    }

    fn hub_api(&self, method: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let auth = format!("Bearer {}", self.admin_token);
        self.client
            .send(
                method,
                &format!("{}/hub/api/{path}", self.hub_url),
                Some(&auth),
                body,
            )
            .unwrap_or_else(|| panic!("JupyterHub answers {method} {path}:\n{}", self.hub.log()))
    }

    pub fn add_user(&self, name: &str) {
        let (status, body) = self.hub_api("POST", &format!("users/{name}"), None);
        assert_eq!(status, 201, "add user {name}: {body}");
    }

    fn user_token(&self, name: &str) -> String {
        let (status, body) = self.hub_api("POST", &format!("users/{name}/tokens"), Some("{}"));
        assert_eq!(status, 201, "token of {name}: {body}");
        let token: serde_json::Value = serde_json::from_str(&body).expect("token JSON");
        token["token"].as_str().expect("a token").to_owned()
    }

    /// Starts `name`'s default server and waits until the hub calls it ready.
    pub fn start_server(&self, name: &str) {
        let (status, body) = self.hub_api("POST", &format!("users/{name}/server"), None);
        assert!(
            status == 201 || status == 202,
            "start {name}'s server: {status} {body}"
        );
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.hub_api("GET", &format!("users/{name}"), None);
            let user: serde_json::Value = serde_json::from_str(&body).expect("user JSON");
            if user["servers"][""]["ready"] == true {
                return;
            }
            assert!(
                Instant::now() < end,
                "{name}'s server not ready: {body}\n{}",
                self.hub.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A gateway cluster of user `ops` with `workers` workers running, made with the real
    /// `dask-gateway` client; its name.
    pub fn new_cluster(&self, workers: u32) -> String {
        let script = r#"
import sys
from dask_gateway import Gateway, JupyterHubAuth
gateway = Gateway(sys.argv[1], auth=JupyterHubAuth(api_token=sys.argv[2]))
name = gateway.submit()
with gateway.connect(name, shutdown_on_close=False) as cluster:
    cluster.scale(int(sys.argv[3]))
    client = cluster.get_client()
    client.wait_for_workers(int(sys.argv[3]), timeout=60)
    client.close()
print(name)
"#;
        let out = Command::new("python3")
            .args([
                "-c",
                script,
                &self.gateway_url,
                &self.ops_token,
                &workers.to_string(),
            ])
            .stdin(Stdio::null())
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "dask-gateway client failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.gateway.log()
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// The gateway's status of cluster `name` (as `ops` sees it).
    pub fn cluster_status(&self, name: &str) -> String {
        let auth = format!("jupyterhub {}", self.ops_token);
        let (status, body) = self
            .client
            .send(
                "GET",
                &format!("{}/api/v1/clusters/{name}", self.gateway_url),
                Some(&auth),
                None,
            )
            .expect("the gateway answers");
        assert_eq!(status, 200, "{body}");
        let cluster: serde_json::Value = serde_json::from_str(&body).expect("cluster JSON");
        cluster["status"].as_str().unwrap_or_default().to_owned()
    }

    pub fn logs(&self) -> String {
        format!("{}\n{}", self.hub.log(), self.gateway.log())
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for DaskHub {
    fn drop(&mut self) {
        // The gateway first: on SIGTERM it stops its clusters (their processes have their own
        // sessions), and it needs the hub for nothing more.
        self.gateway.stop();
        self.hub.stop();
    }
}

/// Writes the **stand-in `helm`** (no real helm installs here) into `dir`: it records each
/// call's arguments (one per line) and standard input in `dir/helm-calls/N.{args,stdin}`, answers
/// `version --short` with `v3.16.0+stand-in`, and `upgrade` with the release JSON helm prints
/// for `--output json`, its revision counting up per release. Returns its path.
pub fn helm_stand_in(dir: &Path) -> PathBuf {
    let calls = dir.join("helm-calls");
    std::fs::create_dir_all(&calls).expect("helm calls dir");
    let script = format!(
        r#"#!/usr/bin/env python3
# Stand-in for helm (tests only): records argv and stdin, answers like helm 3.
import json, os, sys
calls = {calls:?}
n = len([f for f in os.listdir(calls) if f.endswith(".args")])
args = sys.argv[1:]
stdin = sys.stdin.read() if "-" in args else ""
open(os.path.join(calls, f"{{n}}.args"), "w").write("\n".join(args))
open(os.path.join(calls, f"{{n}}.stdin"), "w").write(stdin)
if args[:1] == ["version"]:
    print("v3.16.0+stand-in")
    sys.exit(0)
if args[:1] == ["upgrade"]:
    json.loads(stdin)  # helm refuses values it cannot parse
    release = [a for a in args[1:] if not a.startswith("-")][0]
    ns = args[args.index("--namespace") + 1]
    revisions = [f for f in os.listdir(calls) if f.endswith(".args") and open(os.path.join(calls, f)).read().startswith("upgrade")]
    print(json.dumps({{"name": release, "namespace": ns, "version": len(revisions),
                      "info": {{"status": "deployed", "description": "Upgrade complete"}}}}))
    sys.exit(0)
print("stand-in helm: unknown command " + " ".join(args), file=sys.stderr)
sys.exit(1)
"#,
        calls = calls.display().to_string()
    );
    let path = dir.join("helm");
    std::fs::write(&path, script).expect("stand-in helm");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// The recorded calls of the stand-in helm: (arguments, standard input), in order.
pub fn helm_calls(dir: &Path) -> Vec<(Vec<String>, String)> {
    let calls = dir.join("helm-calls");
    let mut out = Vec::new();
    for n in 0.. {
        let Ok(args) = std::fs::read_to_string(calls.join(format!("{n}.args"))) else {
            break;
        };
        let stdin = std::fs::read_to_string(calls.join(format!("{n}.stdin"))).unwrap_or_default();
        out.push((args.lines().map(str::to_owned).collect(), stdin));
    }
    out
}

/// A bot on `config` (`crate::config_text`-based) with `programs` added to `[host.programs]`.
pub fn bot_with_programs(
    libraries: &[PathBuf],
    programs: &[(&str, &Path)],
    extra: &str,
) -> crate::TestBot {
    // SAFETY: as in `TestBot::with_libraries`: every test sets the same value.
    unsafe { std::env::set_var("DECKHAND_IT_TOKEN", "it-secret-token") };
    let dir = tempfile::tempdir().expect("temp dir");
    let plugin_dir = dir.path().join("plugins");
    std::fs::create_dir_all(&plugin_dir).expect("plugin dir");
    for source in libraries {
        let name = source.file_name().expect("a library file");
        std::fs::copy(source, plugin_dir.join(name)).expect("plugin copied");
    }
    let mut lines = String::from("[host.programs]\n");
    for (name, path) in programs {
        lines.push_str(&format!("{name} = {:?}\n", path.display().to_string()));
    }
    let text = crate::config_text(&plugin_dir, &dir.path().join("state.db"), extra).replacen(
        "[host.programs]\n",
        &lines,
        1,
    );
    let path = dir.path().join("deckhand.toml");
    std::fs::write(&path, text).expect("config written");
    let config = deckhand::config::Config::load(&path).expect("test config is valid");
    let app = deckhand::app::App::start(config).expect("bot starts");
    crate::TestBot { dir, app }
}
