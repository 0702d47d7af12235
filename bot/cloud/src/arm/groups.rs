//! Resource groups through `azure_mgmt_resources` (the legacy SDK line, on the same `azure_core`
//! 0.21 as the credentials): the crate's clients build each request and read its typed answer;
//! Deckhand's own pipeline sends it.
//!
//! The crate's `Pipeline` is configured with no retries of its own and a transport
//! ([`Transport`]) that hands every request over a channel to this call's driver, which sends
//! it with [`ArmClient::send`]: a typed call gets the same bearer token (refreshed once on a
//! 401), the same retry/Retry-After policy, the same per-attempt timeout within the command's
//! deadline and the same cancellation as every other ARM call. The driver sends only to the
//! address Deckhand built from the validated names (the crate joins names into its path
//! unescaped). A delete is sent by the crate (0.21 has no poller for it) and
//! followed to the end by [`ArmClient`]'s own long-running-operation code.

use std::sync::{Arc, Mutex};

use azure_core::auth::{AccessToken, Secret, TokenCredential};
use azure_core::error::ErrorKind;
use azure_mgmt_resources::package_resources_2021_04 as resources;
use azure_mgmt_resources::package_subscriptions_2021_01 as subscriptions;
use deckhand_cloud_names::{ArmPath, NameRule};
use deckhand_plugin_abi::proto::{
    LocationInfo, ResourceGroupInfo, ResourceGroupRequest, ResourceGroupResponse, ResourceInfo,
};
use futures::StreamExt;
use serde_json::Value;

use super::error::azure_error;
use super::{ArmClient, ArmError, CallContext, Exchange};

impl ArmClient {
    /// One resource-group operation, typed end to end. Names are checked (Azure's
    /// resource-group rule, then as a path segment) before anything is sent.
    pub async fn resource_groups(
        &self,
        request: &ResourceGroupRequest,
        cx: &CallContext<'_>,
    ) -> Result<ResourceGroupResponse, ArmError> {
        let operation = request.describe();
        let bad = |message: String| ArmError::BadRequest {
            operation: operation.clone(),
            message,
        };
        let group = match request.name() {
            Some(name) => {
                NameRule::ResourceGroup
                    .check(name)
                    .map_err(|e| bad(e.to_string()))?;
                Some(ArmPath::resource_group(name).map_err(|e| bad(e.to_string()))?)
            }
            None => None,
        };
        if let ResourceGroupRequest::CreateOrUpdate { location, .. } = request {
            NameRule::Location
                .check(location)
                .map_err(|e| bad(e.to_string()))?;
        }
        let mut expected: Vec<String> = match &group {
            Some(group) => group.segments(Some(&self.subscription)),
            None => vec!["subscriptions", self.subscription.as_str()],
        }
        .into_iter()
        .map(str::to_owned)
        .collect();
        match request {
            ResourceGroupRequest::List => expected.push("resourceGroups".into()),
            ResourceGroupRequest::Locations => expected.push("locations".into()),
            ResourceGroupRequest::Resources { .. } => expected.push("resources".into()),
            _ => {}
        }
        let (jobs, mut queue) = tokio::sync::mpsc::unbounded_channel();
        let transport = Arc::new(Transport { jobs });
        let endpoint = azure_core::Url::parse(&self.endpoint).map_err(|e| {
            bad(format!(
                "the ARM endpoint {:?} is not a URL: {e}",
                self.endpoint
            ))
        })?;
        let options = azure_core::ClientOptions::new(azure_core::TransportOptions::new(transport))
            .retry(azure_core::RetryOptions::none());
        let credential: Arc<dyn TokenCredential> = Arc::new(TransportAuthorizes);
        let record = Mutex::new(Record::default());
        let driver = Driver {
            arm: self,
            expected,
            operation: &operation,
            cx,
            record: &record,
        };
        let sub = self.subscription.clone();
        let work = async {
            match request {
                ResourceGroupRequest::List => {
                    let client = resources::Client::new(endpoint, credential, Vec::new(), options);
                    let mut pages = client.resource_groups_client().list(sub).into_stream();
                    let mut groups = Vec::new();
                    while let Some(page) = pages.next().await {
                        groups.extend(page?.value.into_iter().map(group_info));
                    }
                    Ok(Answer::Groups(groups, None))
                }
                ResourceGroupRequest::Get { name } => {
                    let client = resources::Client::new(endpoint, credential, Vec::new(), options);
                    let group = client.resource_groups_client().get(name, sub).await?;
                    Ok(Answer::Groups(vec![group_info(group)], None))
                }
                ResourceGroupRequest::CreateOrUpdate {
                    name,
                    location,
                    tags,
                } => {
                    let client = resources::Client::new(endpoint, credential, Vec::new(), options);
                    let mut parameters = resources::models::ResourceGroup::new(location.clone());
                    if !tags.is_empty() {
                        parameters.tags = Some(serde_json::json!(tags));
                    }
                    let response = client
                        .resource_groups_client()
                        .create_or_update(name, parameters, sub)
                        .send()
                        .await?;
                    let created =
                        response.as_raw_response().status() == azure_core::StatusCode::Created;
                    let group = response.into_body().await?;
                    Ok(Answer::Groups(vec![group_info(group)], Some(created)))
                }
                ResourceGroupRequest::Delete { name } => {
                    let client = resources::Client::new(endpoint, credential, Vec::new(), options);
                    client
                        .resource_groups_client()
                        .delete(name, sub)
                        .send()
                        .await?;
                    Ok(Answer::Accepted)
                }
                ResourceGroupRequest::Resources { name } => {
                    let client = resources::Client::new(endpoint, credential, Vec::new(), options);
                    let mut pages = client
                        .resources_client()
                        .list_by_resource_group(name, sub)
                        .expand("provisioningState")
                        .into_stream();
                    let mut found = Vec::new();
                    while let Some(page) = pages.next().await {
                        found.extend(page?.value.into_iter().map(resource_info));
                    }
                    Ok(Answer::Resources(found))
                }
                ResourceGroupRequest::Locations => {
                    let client =
                        subscriptions::Client::new(endpoint, credential, Vec::new(), options);
                    let list = client
                        .subscriptions_client()
                        .list_locations(sub)
                        .send()
                        .await?
                        .into_body()
                        .await?;
                    Ok(Answer::Locations(
                        list.value.into_iter().filter_map(location_info).collect(),
                    ))
                }
            }
        };
        let drive = async {
            while let Some(job) = queue.recv().await {
                driver.run(job).await;
            }
            std::future::pending().await
        };
        let outcome: azure_core::Result<Answer> = tokio::select! {
            done = work => done,
            never = drive => never,
        };
        let record = record
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (answer, first_request_id, last) = match outcome {
            Ok(answer) => (answer, record.first_request_id, record.last),
            Err(e) => return Err(record.error(&operation, &e)),
        };
        let mut response = ResourceGroupResponse {
            request_id: first_request_id,
            ..ResourceGroupResponse::default()
        };
        match answer {
            Answer::Groups(groups, created) => {
                response.groups = groups;
                response.created = created;
            }
            Answer::Resources(found) => response.resources = found,
            Answer::Locations(found) => response.locations = found,
            Answer::Accepted => {
                let first = last.ok_or_else(|| ArmError::Unreadable {
                    operation: operation.clone(),
                    message: "the delete was sent but no answer was recorded".into(),
                    request_id: None,
                })?;
                self.finish_delete(&first, request, &operation, cx).await?;
            }
        }
        Ok(response)
    }

    /// Follows an accepted delete (202 with `Location` or `Azure-AsyncOperation`) to its end.
    async fn finish_delete(
        &self,
        first: &Exchange,
        request: &ResourceGroupRequest,
        operation: &str,
        cx: &CallContext<'_>,
    ) -> Result<(), ArmError> {
        let async_op = first.header("azure-asyncoperation");
        let location = first.header("location").filter(|_| first.status == 202);
        if async_op.is_none() && location.is_none() {
            return Ok(());
        }
        let label = format!(
            "Deleting resource group {}",
            request.name().unwrap_or_default()
        );
        self.follow(first, async_op, location, &label, operation, cx)
            .await
            .map(drop)
    }
}

/// What the crate answered, before it becomes a [`ResourceGroupResponse`].
enum Answer {
    Groups(Vec<ResourceGroupInfo>, Option<bool>),
    Resources(Vec<ResourceInfo>),
    Locations(Vec<LocationInfo>),
    Accepted,
}

fn tags(value: Option<Value>) -> std::collections::BTreeMap<String, String> {
    match value {
        Some(Value::Object(map)) => map
            .into_iter()
            .map(|(k, v)| {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                (k, v)
            })
            .collect(),
        _ => Default::default(),
    }
}

fn group_info(group: resources::models::ResourceGroup) -> ResourceGroupInfo {
    ResourceGroupInfo {
        id: group.id.unwrap_or_default(),
        name: group.name.unwrap_or_default(),
        location: group.location,
        tags: tags(group.tags),
        provisioning_state: group.properties.and_then(|p| p.provisioning_state),
        managed_by: group.managed_by,
    }
}

fn resource_info(resource: resources::models::GenericResourceExpanded) -> ResourceInfo {
    let inner = resource.generic_resource.resource;
    ResourceInfo {
        id: inner.id.unwrap_or_default(),
        name: inner.name.unwrap_or_default(),
        resource_type: inner.type_.unwrap_or_default(),
        location: inner.location,
        provisioning_state: resource.provisioning_state,
    }
}

fn location_info(location: subscriptions::models::Location) -> Option<LocationInfo> {
    Some(LocationInfo {
        name: location.name?,
        display_name: location.display_name,
    })
}

/// The crate asks its credential for a token and writes its own `Authorization` header; the
/// transport never forwards the crate's headers and sends with Deckhand's token source
/// instead (so a 401 refreshes it once, as for every ARM call). This credential therefore
/// hands the crate a placeholder that never leaves the process.
#[derive(Debug)]
struct TransportAuthorizes;

#[async_trait::async_trait]
impl TokenCredential for TransportAuthorizes {
    async fn get_token(&self, _scopes: &[&str]) -> azure_core::Result<AccessToken> {
        Ok(AccessToken::new(
            Secret::new("set-by-deckhand-transport"),
            time::OffsetDateTime::now_utc() + time::Duration::hours(1),
        ))
    }

    async fn clear_cache(&self) -> azure_core::Result<()> {
        Ok(())
    }
}

/// What the transport saw during one typed call.
#[derive(Default)]
struct Record {
    first_request_id: Option<String>,
    /// The last answer (an error answer's code and request id are read from here).
    last: Option<Exchange>,
    /// Why the last request got no answer, or was not sent.
    failure: Option<ArmError>,
}

impl Record {
    /// The [`ArmError`] for a failed typed call: the transport's own failure, else Azure's
    /// error answer, else the crate's complaint about an answer it could not read.
    fn error(self, operation: &str, e: &azure_core::Error) -> ArmError {
        if let Some(failure) = self.failure {
            return failure;
        }
        match self.last {
            Some(last) if !last.is_success() => {
                azure_error(operation, last.status, &last.body, last.request_id())
            }
            last => ArmError::Unreadable {
                operation: operation.to_owned(),
                message: e.to_string(),
                request_id: last.and_then(|l| l.request_id()),
            },
        }
    }
}

/// One request the crate wants sent, and where its answer goes.
struct Job {
    method: String,
    url: azure_core::Url,
    /// `None` for a streamed body (the typed calls here never send one).
    body: Option<Vec<u8>>,
    answer: tokio::sync::oneshot::Sender<Result<Exchange, ()>>,
}

/// The crate's HTTP client for one typed call: hands each request to the call's [`Driver`].
struct Transport {
    jobs: tokio::sync::mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport").finish_non_exhaustive()
    }
}

#[async_trait::async_trait]
impl azure_core::HttpClient for Transport {
    async fn execute_request(
        &self,
        request: &azure_core::Request,
    ) -> azure_core::Result<azure_core::Response> {
        let body = match request.body() {
            azure_core::Body::Bytes(bytes) => Some(bytes.to_vec()),
            _ => None,
        };
        let (answer, answered) = tokio::sync::oneshot::channel();
        let job = Job {
            method: request.method().to_string().to_ascii_uppercase(),
            url: request.url().clone(),
            body,
            answer,
        };
        let not_sent = || azure_core::Error::message(ErrorKind::Io, "not sent (see the ARM error)");
        self.jobs.send(job).map_err(|_| not_sent())?;
        let exchange = answered
            .await
            .map_err(|_| not_sent())?
            .map_err(|()| not_sent())?;
        let status = azure_core::StatusCode::try_from(exchange.status).map_err(|_| {
            azure_core::Error::message(ErrorKind::DataConversion, "invalid status code")
        })?;
        let headers: std::collections::HashMap<_, _> = exchange
            .headers
            .iter()
            .filter_map(|(k, v)| {
                Some((
                    azure_core::headers::HeaderName::from(k.as_str().to_owned()),
                    azure_core::headers::HeaderValue::from(v.to_str().ok()?.to_owned()),
                ))
            })
            .collect();
        Ok(azure_core::Response::new(
            status,
            azure_core::headers::Headers::from(headers),
            Box::pin(azure_core::BytesStream::new(exchange.body.into_bytes())),
        ))
    }
}

/// Sends the crate's requests for one typed call, with the call's own context.
struct Driver<'a> {
    arm: &'a ArmClient,
    /// The decoded path segments the call may address (below the endpoint).
    expected: Vec<String>,
    operation: &'a str,
    cx: &'a CallContext<'a>,
    record: &'a Mutex<Record>,
}

impl Driver<'_> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Record> {
        self.record
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends one job (or refuses it) and records what happened.
    async fn run(&self, job: Job) {
        let outcome = self.send(&job).await;
        let reply = match outcome {
            Ok(exchange) => {
                let mut record = self.lock();
                if record.first_request_id.is_none() {
                    record.first_request_id = exchange.request_id();
                }
                record.last = Some(exchange.clone());
                Ok(exchange)
            }
            Err(e) => {
                self.lock().failure = Some(e);
                Err(())
            }
        };
        // The crate may have stopped waiting; nothing is lost then.
        let _ = job.answer.send(reply);
    }

    async fn send(&self, job: &Job) -> Result<Exchange, ArmError> {
        let bad = |message: String| ArmError::BadRequest {
            operation: self.operation.to_owned(),
            message,
        };
        self.check_url(&job.url).map_err(bad)?;
        let body = match &job.body {
            None => return Err(bad("the typed client sent a streamed body".into())),
            Some(bytes) if bytes.is_empty() => None,
            Some(bytes) => Some(
                serde_json::from_slice::<Value>(bytes)
                    .map_err(|e| bad(format!("the typed client's body is not JSON: {e}")))?,
            ),
        };
        self.arm
            .send(
                &job.method,
                job.url.as_str(),
                body.as_ref(),
                None,
                self.operation,
                self.cx,
            )
            .await
    }

    /// Refuses a URL that is not on the endpoint or not the address built from the names.
    fn check_url(&self, url: &azure_core::Url) -> Result<(), String> {
        let endpoint = azure_core::Url::parse(&self.arm.endpoint).map_err(|e| e.to_string())?;
        if url.origin() != endpoint.origin() {
            return Err(format!(
                "the typed client addressed {}, not the ARM endpoint",
                url.origin().ascii_serialization()
            ));
        }
        let segments: Vec<String> = url
            .path_segments()
            .map(|s| {
                s.map(|raw| {
                    percent_encoding::percent_decode_str(raw)
                        .decode_utf8_lossy()
                        .into_owned()
                })
                .collect()
            })
            .unwrap_or_default();
        let same = segments.len() == self.expected.len()
            && segments
                .iter()
                .zip(&self.expected)
                .all(|(a, b)| a.eq_ignore_ascii_case(b));
        if same {
            Ok(())
        } else {
            Err(format!(
                "the typed client addressed {}, not /{}",
                url.path(),
                self.expected.join("/")
            ))
        }
    }
}
