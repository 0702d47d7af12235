//! An in-process test harness for plugins (feature `testing`): the plugin runs in the test
//! binary, with no workspace build and no `dlopen`, against a scripted fake host.
//!
//! ```ignore
//! let mut test = PluginTest::<Aks>::new(json!({"resource_group": "pangeo"}));
//! test.expect(Expect::arm("GET", "/managedClusters"), Ok(json!({"value": []})));
//! let reply = test.run("/aks clusters").unwrap();
//! assert_eq!(reply.text, "No AKS clusters in resource group pangeo.");
//! test.finish(); // every expected call was made
//! ```
//!
//! - [`PluginTest::run`] parses the line with the router's own grammar
//!   (`deckhand-command-grammar`) against the plugin's manifest, so a bad option or a name that
//!   breaks its rule is refused exactly as in chat, before the plugin is called.
//! - Service calls cross the same C table ([`HostApi`]) and JSON messages as in production.
//!   Each one must match the next [`Expect`] in the script; it is answered with the scripted
//!   value. Progress and log lines are recorded, not scripted.
//! - An unexpected call (or one out of order) is answered with an error and fails the test
//!   when `run` returns: the plugin cannot paper over it.

use std::collections::VecDeque;
use std::ffi::c_void;
use std::sync::Mutex;

use deckhand_command_grammar::{CommandIndex, Owner, ParseError};
use deckhand_plugin_abi::ABI_VERSION;
use deckhand_plugin_abi::ffi::{Buf, HostApi};
use deckhand_plugin_abi::proto::{
    Call, Caller, HostError, HostRequest, HostResponse, PluginError, Reply, Service,
};
use serde_json::Value;

use crate::{Ctx, Host, Plugin};

/// `responses.STATUS.body` of a real Azure example in `../shared/azure-examples` (beside the
/// repository), e.g. `azure_example("aks/AgentPoolsGet.json", "200")`.
pub fn azure_example(file: &str, status: &str) -> Value {
    let path = format!(
        "{}/../../../shared/azure-examples/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let example: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    example["responses"][status]["body"].clone()
}

/// The host's ARM answer (`ArmResponse`) for a successful call returning `body`.
pub fn arm_ok(body: Value) -> Result<Value, HostError> {
    Ok(serde_json::json!({ "status": 200, "body": body }))
}

/// One expected service call: what it must look like, and how it reads in a failure message.
pub struct Expect {
    what: String,
    matches: Box<dyn Fn(&Service) -> bool + Send>,
}

impl Expect {
    /// An ARM request with this method whose path ends with `path_end`.
    pub fn arm(method: &str, path_end: &str) -> Expect {
        let (method, path_end) = (method.to_owned(), path_end.to_owned());
        Expect {
            what: format!("ARM {method} …{path_end}"),
            matches: Box::new(move |service| {
                matches!(service, Service::Arm { request }
                    if request.method.eq_ignore_ascii_case(&method) && request.path.ends_with(&path_end))
            }),
        }
    }

    /// A Kubernetes request with this verb on this kind.
    pub fn kube(verb: &str, kind: &str) -> Expect {
        let (verb, kind) = (verb.to_owned(), kind.to_owned());
        Expect {
            what: format!("Kubernetes {verb} {kind}"),
            matches: Box::new(
                move |service| matches!(service, Service::Kube { request } if request.verb == verb && request.kind == kind),
            ),
        }
    }

    /// Any call `matches` accepts, described as `what`.
    pub fn call(what: &str, matches: impl Fn(&Service) -> bool + Send + 'static) -> Expect {
        Expect {
            what: what.to_owned(),
            matches: Box::new(matches),
        }
    }
}

/// Why [`PluginTest::run`] produced no reply.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum RunError {
    /// The line was refused by the command grammar (the plugin was not called).
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// The line names a command this plugin does not own.
    #[error("/{0} is not a command of this plugin")]
    NotThisPlugin(String),
    /// The plugin answered with an error.
    #[error("{0}")]
    Plugin(PluginError),
}

/// The fake host's state, behind the `ctx` pointer of its [`HostApi`].
#[derive(Default)]
struct Script {
    expected: VecDeque<(Expect, Result<Value, HostError>)>,
    served: Vec<Service>,
    progress: Vec<String>,
    unexpected: Vec<String>,
}

/// A plugin under test with its scripted host.
pub struct PluginTest<P: Plugin> {
    plugin: P,
    index: CommandIndex,
    // Boxed so the pointers handed to the plugin stay put when the harness moves.
    api: Box<HostApi>,
    script: Box<Mutex<Script>>,
    caller: Caller,
}

impl<P: Plugin> PluginTest<P> {
    /// Starts the plugin with `config` as its `[plugins.config.NAME]` section; panics (failing
    /// the test) when `init` refuses it. See [`PluginTest::try_new`] to test that.
    pub fn new(config: Value) -> PluginTest<P> {
        match PluginTest::try_new(config) {
            Ok(test) => test,
            Err(e) => panic!("plugin init failed: {e}"),
        }
    }

    /// Starts the plugin, or returns the error its `init` gave.
    pub fn try_new(config: Value) -> Result<PluginTest<P>, PluginError> {
        let script: Box<Mutex<Script>> = Box::default();
        let api = Box::new(HostApi {
            abi_version: ABI_VERSION,
            size: std::mem::size_of::<HostApi>() as u32,
            ctx: (&*script as *const Mutex<Script>).cast::<c_void>(),
            call: fake_call,
            is_cancelled: never_cancelled,
            free_buf: fake_free,
        });
        let config = crate::config::decode::<P::Config>(&P::manifest().name, config)?;
        let plugin = P::init(config, &Host::new(&*api))?;
        let mut index = CommandIndex::default();
        for spec in P::manifest().commands {
            index.insert(Owner::Plugin(P::manifest().name), spec);
        }
        Ok(PluginTest {
            plugin,
            index,
            api,
            script,
            caller: Caller {
                user_id: "tester".into(),
                display_name: "Test User".into(),
                roles: vec!["admin".into()],
            },
        })
    }

    /// Adds the next expected service call and its answer.
    pub fn expect(&mut self, call: Expect, answer: Result<Value, HostError>) -> &mut Self {
        self.lock().expected.push_back((call, answer));
        self
    }

    /// Runs one chat line through the grammar and the plugin. Panics (failing the test) if the
    /// plugin made a service call the script did not expect.
    pub fn run(&self, line: &str) -> Result<Reply, RunError> {
        self.run_as(line, false)
    }

    /// Runs one chat line as the host's preview of a destructive command (its confirmation
    /// text; see `CommandSpec::preview`).
    pub fn preview(&self, line: &str) -> Result<Reply, RunError> {
        self.run_as(line, true)
    }

    fn run_as(&self, line: &str, preview: bool) -> Result<Reply, RunError> {
        let parsed = self.index.parse(line)?;
        if parsed.owner != Owner::Plugin(P::manifest().name) {
            return Err(RunError::NotThisPlugin(parsed.path.join(" ")));
        }
        let call = Call {
            invocation_id: "test-invocation".into(),
            command: parsed.path,
            caller: self.caller.clone(),
            channel: "test".into(),
            options: parsed.options,
            timeout_ms: parsed.spec.timeout_secs.unwrap_or(60).saturating_mul(1000),
            preview,
        };
        let ctx = Ctx::new(Host::new(&*self.api), Some(call.invocation_id.clone()));
        let result = self.plugin.call(&ctx, &call).map_err(RunError::Plugin);
        let unexpected = std::mem::take(&mut self.lock().unexpected);
        assert!(
            unexpected.is_empty(),
            "{line}: unexpected service calls:\n{}",
            unexpected.join("\n")
        );
        result
    }

    /// The service calls served so far (progress and logs excluded), in order.
    pub fn served(&self) -> Vec<Service> {
        self.lock().served.clone()
    }

    /// Progress lines the plugin reported.
    pub fn progress(&self) -> Vec<String> {
        self.lock().progress.clone()
    }

    /// Asserts every expected call was made.
    pub fn finish(self) {
        let script = self.lock();
        let left: Vec<&str> = script
            .expected
            .iter()
            .map(|(e, _)| e.what.as_str())
            .collect();
        assert!(
            left.is_empty(),
            "expected service calls never made: {left:?}"
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<P: Plugin> Drop for PluginTest<P> {
    fn drop(&mut self) {
        self.plugin.shutdown();
    }
}

fn answer(script: &Mutex<Script>, request: HostRequest) -> HostResponse {
    let mut script = script.lock().unwrap_or_else(|p| p.into_inner());
    match request.service {
        Service::Progress { message } => {
            script.progress.push(message);
            return HostResponse::Ok(Value::Null);
        }
        Service::Log { .. } => return HostResponse::Ok(Value::Null),
        _ => {}
    }
    let matched = script
        .expected
        .front()
        .is_some_and(|(expect, _)| (expect.matches)(&request.service));
    if !matched {
        let next = script
            .expected
            .front()
            .map_or("no more calls".to_owned(), |(e, _)| {
                format!("next expected: {}", e.what)
            });
        script
            .unexpected
            .push(format!("{:?} ({next})", request.service));
        return HostResponse::Error(HostError::new(
            "unexpected",
            "the test's script did not expect this call",
        ));
    }
    script.served.push(request.service);
    match script.expected.pop_front().map(|(_, answer)| answer) {
        Some(Ok(value)) => HostResponse::Ok(value),
        Some(Err(error)) => HostResponse::Error(error),
        None => HostResponse::Ok(Value::Null),
    }
}

extern "C" fn fake_call(ctx: *const c_void, request: *const u8, len: usize) -> Buf {
    // SAFETY: `ctx` is the `Mutex<Script>` boxed by `PluginTest`, alive while the plugin is;
    // `request`/`len` are the plugin's bytes for the duration of this call.
    let script = unsafe { &*ctx.cast::<Mutex<Script>>() };
    let bytes = unsafe { std::slice::from_raw_parts(request, len) };
    let response = match serde_json::from_slice::<HostRequest>(bytes) {
        Ok(request) => answer(script, request),
        Err(e) => HostResponse::Error(HostError::new("bad_request", e.to_string())),
    };
    Buf::from_vec(serde_json::to_vec(&response).unwrap_or_default())
}

extern "C" fn never_cancelled(_ctx: *const c_void, _invocation: *const u8, _len: usize) -> bool {
    false
}

extern "C" fn fake_free(_ctx: *const c_void, buf: Buf) {
    // SAFETY: every buffer the fake host hands out comes from `Buf::from_vec` in `fake_call`.
    drop(unsafe { buf.into_vec() });
}
