//! The plugin's side of host services.

use deckhand_plugin_abi::ffi::HostApi;
use deckhand_plugin_abi::proto::{
    HostError, HostRequest, HostResponse, HttpRequest, HttpResponse, LogLevel, Notification,
    PresignedUrl, ProgramOutput, Service,
};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The host's service table, valid from `init` until `shutdown`.
#[derive(Clone, Copy)]
pub struct Host {
    api: *const HostApi,
}

// SAFETY: the ABI requires the host's table and functions to be callable from any thread.
unsafe impl Send for Host {}
unsafe impl Sync for Host {}

impl Host {
    pub(crate) fn new(api: *const HostApi) -> Host {
        Host { api }
    }

    fn api(&self) -> &HostApi {
        // SAFETY: the host keeps the table alive until after `shutdown`.
        unsafe { &*self.api }
    }

    /// Sends one request to a host service and decodes its answer.
    pub fn request(&self, invocation: Option<&str>, service: Service) -> Result<Value, HostError> {
        let request = HostRequest {
            invocation: invocation.map(str::to_owned),
            service,
        };
        let bytes = serde_json::to_vec(&request).expect("host requests always serialize");
        let api = self.api();
        let buf = (api.call)(api.ctx, bytes.as_ptr(), bytes.len());
        // SAFETY: `buf` came from the host's `call` and is freed right after through its table.
        let parsed = serde_json::from_slice::<HostResponse>(unsafe { buf.as_slice() });
        (api.free_buf)(api.ctx, buf);
        match parsed {
            Ok(HostResponse::Ok(value)) => Ok(value),
            Ok(HostResponse::Error(error)) => Err(error),
            Err(e) => Err(HostError::new(
                "bad_response",
                format!("host answered with unreadable JSON: {e}"),
            )),
        }
    }

    fn is_cancelled(&self, invocation: &str) -> bool {
        let api = self.api();
        (api.is_cancelled)(api.ctx, invocation.as_ptr(), invocation.len())
    }
}

/// One call's view of the host: every service request carries the call's invocation id, so
/// progress, audit and cancellation attach to it.
pub struct Ctx {
    host: Host,
    invocation: Option<String>,
}

impl Ctx {
    pub(crate) fn new(host: Host, invocation: Option<String>) -> Ctx {
        Ctx { host, invocation }
    }

    pub fn invocation_id(&self) -> Option<&str> {
        self.invocation.as_deref()
    }

    /// True once the host cancelled this call (time limit or user request). Long loops should
    /// check it and return early.
    pub fn is_cancelled(&self) -> bool {
        self.invocation
            .as_deref()
            .is_some_and(|id| self.host.is_cancelled(id))
    }

    fn service<T: DeserializeOwned>(&self, service: Service) -> Result<T, HostError> {
        let value = self.host.request(self.invocation.as_deref(), service)?;
        serde_json::from_value(value).map_err(|e| {
            HostError::new(
                "bad_response",
                format!("host service answered an unexpected shape: {e}"),
            )
        })
    }

    /// Sends any host service request and returns its raw JSON answer (for services without
    /// a typed helper here).
    pub fn service_value(&self, service: Service) -> Result<Value, HostError> {
        self.service(service)
    }

    /// An ARM request; the host authenticates, retries and follows long-running operations.
    pub fn arm(
        &self,
        request: deckhand_plugin_abi::proto::ArmRequest,
    ) -> Result<deckhand_plugin_abi::proto::ArmResponse, HostError> {
        self.service(Service::Arm { request })
    }

    /// A resource-group operation through the host's typed Resource Manager client.
    pub fn resource_groups(
        &self,
        request: deckhand_plugin_abi::proto::ResourceGroupRequest,
    ) -> Result<deckhand_plugin_abi::proto::ResourceGroupResponse, HostError> {
        self.service(Service::ResourceGroups { request })
    }

    /// A Kubernetes request on a configured cluster.
    pub fn kube(
        &self,
        request: deckhand_plugin_abi::proto::KubeRequest,
    ) -> Result<deckhand_plugin_abi::proto::KubeResponse, HostError> {
        self.service(Service::Kube { request })
    }

    /// A container registry query.
    pub fn registry(
        &self,
        request: deckhand_plugin_abi::proto::RegistryRequest,
    ) -> Result<deckhand_plugin_abi::proto::RegistryResponse, HostError> {
        self.service(Service::Registry { request })
    }

    /// Shows a progress line to the caller; failures to deliver it are not the plugin's problem.
    pub fn progress(&self, message: impl Into<String>) {
        let _ = self.service::<Value>(Service::Progress {
            message: message.into(),
        });
    }

    pub fn log(&self, level: LogLevel, message: impl Into<String>) {
        let _ = self.service::<Value>(Service::Log {
            level,
            message: message.into(),
        });
    }

    pub fn notify(&self, notification: Notification) -> Result<(), HostError> {
        self.service::<Value>(Service::Notify { notification })
            .map(drop)
    }

    /// Runs `line` (a command of this plugin) again after this command has answered and
    /// `after_secs` have passed, its reply posted in the same conversation: how a command keeps
    /// following work that outlives its limit.
    pub fn follow_up(&self, line: impl Into<String>, after_secs: u32) -> Result<(), HostError> {
        self.service::<Value>(Service::FollowUp {
            line: line.into(),
            after_secs,
        })
        .map(drop)
    }

    pub fn http(&self, request: HttpRequest) -> Result<HttpResponse, HostError> {
        self.service(Service::Http { request })
    }

    /// A URL for `request` that the host presigns with its `sigv4` auth profile, valid for
    /// `expires_secs` (S3 allows at most 7 days). Nothing is sent.
    pub fn http_presign(
        &self,
        request: HttpRequest,
        expires_secs: u64,
    ) -> Result<String, HostError> {
        self.service::<PresignedUrl>(Service::HttpPresign {
            request,
            expires_secs,
        })
        .map(|p| p.url)
    }

    pub fn kv_get(&self, key: &str) -> Result<Option<Value>, HostError> {
        self.service(Service::KvGet { key: key.into() })
    }

    pub fn kv_put(&self, key: &str, value: Value) -> Result<(), HostError> {
        self.service::<Value>(Service::KvPut {
            key: key.into(),
            value,
        })
        .map(drop)
    }

    pub fn kv_delete(&self, key: &str) -> Result<bool, HostError> {
        self.service(Service::KvDelete { key: key.into() })
    }

    pub fn kv_list(&self, prefix: &str) -> Result<Vec<(String, Value)>, HostError> {
        self.service(Service::KvList {
            prefix: prefix.into(),
        })
    }

    /// Runs a program the manifest declares and the host's config allows, with an argument
    /// list (never through a shell).
    pub fn run(&self, program: &str, args: &[&str]) -> Result<ProgramOutput, HostError> {
        self.service(Service::Run {
            program: program.into(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            stdin: None,
            timeout_ms: None,
        })
    }
}
