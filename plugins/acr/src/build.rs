//! `/acr build`: an ACR Tasks quick run (`scheduleRun` with a `DockerBuildRequest`), its status
//! and log streamed into the invocation's thread as progress, ending with the image digest and
//! the log's tail (or, for a failed run, the step that failed and the tail).

use std::time::{Duration, Instant};

use deckhand_plugin_sdk::abi::proto::ArmRequest;
use deckhand_plugin_sdk::{Ctx, ErrorCode, HttpRequest, PluginError, Reply};
use deckhand_plugin_shared::azure::{ACR_TASKS_API, Run};
use deckhand_plugin_shared::names::NameRule;
use serde_json::{Value, json};

use crate::Acr;
use crate::commands::{Build, RunStatus};
use crate::images::short_digest;
use crate::target::{Target, address_error};

/// Log lines shown at the end.
const TAIL: usize = 15;
/// New log lines shown per progress update.
const STREAMED: usize = 10;
const TERMINAL: &[&str] = &["Succeeded", "Failed", "Canceled", "Error", "Timeout"];

/// `https://host/org/repo[.git][#ref[:dir]]` or `git@host:org/repo.git[#…]`.
pub fn check_context(context: &str) -> Result<(), String> {
    let rule = "--context must be a git URL: https://github.com/org/repo.git[#branch[:dir]]";
    if context.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "{context:?} has spaces or control characters: {rule}"
        ));
    }
    let (url, fragment) = context.split_once('#').unwrap_or((context, ""));
    let (host, path) = if let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    {
        rest.split_once('/').unwrap_or((rest, ""))
    } else if let Some(rest) = url.strip_prefix("git@") {
        rest.split_once(':').unwrap_or((rest, ""))
    } else {
        return Err(format!("{context:?} is not a git URL: {rule}"));
    };
    let host_ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '@'))
        && (host.contains('.') || host.starts_with("localhost"));
    let path_ok = !path.trim_matches('/').is_empty()
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | '~'))
        && !path.split('/').any(|p| p == "..");
    if !host_ok || !path_ok {
        return Err(format!(
            "{context:?} does not name a repository on a git host: {rule}"
        ));
    }
    let fragment_ok = fragment
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':'))
        && !fragment.split(['/', ':']).any(|p| p == "..");
    if !fragment_ok {
        return Err(format!(
            "{fragment:?} is not a ref[:dir] (letters, digits, '.', '-', '_', '/'): {rule}"
        ));
    }
    Ok(())
}

/// `model=mpt.py,debug=1` → `[("model", "mpt.py"), ("debug", "1")]`.
pub fn parse_args(args: &str) -> Result<Vec<(String, String)>, String> {
    args.split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(|a| {
            let (k, v) = a.split_once('=').ok_or_else(|| {
                format!("{a:?} is not in k=v form (e.g. --arg model=mpt.py,debug=1)")
            })?;
            let key_ok = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !key_ok {
                return Err(format!(
                    "{k:?} is not a build-arg name (letters, digits and '_', not starting with a digit)"
                ));
            }
            Ok((k.to_owned(), v.to_owned()))
        })
        .collect()
}

/// The last `n` lines of `log`.
fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The build step the log was in when it failed (`Step 3/3 : RUN …`).
fn failed_step(log: &str) -> Option<&str> {
    log.lines()
        .rev()
        .find(|l| l.trim_start().starts_with("Step "))
}

impl Acr {
    fn run_request(
        &self,
        target: &Target,
        run_id: &str,
        action: Option<&str>,
    ) -> Result<ArmRequest, PluginError> {
        let mut path = target
            .address()?
            .resource("runs", run_id)
            .map_err(address_error)?;
        let method = match action {
            Some(action) => {
                path = path.action(action).map_err(address_error)?;
                "POST"
            }
            None => "GET",
        };
        Ok(ArmRequest {
            method: method.into(),
            path: path.to_string(),
            api_version: ACR_TASKS_API.into(),
            ..Default::default()
        })
    }

    /// The run's log so far (empty when it has none yet).
    fn run_log(&self, ctx: &Ctx, link: &str) -> Result<String, PluginError> {
        let response = ctx.http(HttpRequest {
            method: "GET".into(),
            url: link.to_owned(),
            ..Default::default()
        })?;
        match response.status {
            200..=299 => Ok(response.body),
            404 => Ok(String::new()),
            status => Err(PluginError::new(
                ErrorCode::Upstream,
                format!("reading the run's log failed with HTTP {status}"),
            )),
        }
    }

    pub fn build(&self, ctx: &Ctx, args: &Build, timeout: Duration) -> Result<Reply, PluginError> {
        let started = Instant::now();
        check_context(&args.context).map_err(|e| PluginError::bad_input("context", e))?;
        let build_args = match args.arg.as_deref() {
            Some(a) => parse_args(a).map_err(|e| PluginError::bad_input("arg", e))?,
            None => Vec::new(),
        };
        let target = self.target(ctx, args.registry.as_deref())?;
        let login = target.login_server();
        let scheduled = ctx.arm(ArmRequest {
            method: "POST".into(),
            path: target
                .address()?
                .action("scheduleRun")
                .map_err(address_error)?
                .to_string(),
            api_version: ACR_TASKS_API.into(),
            body: Some(json!({
                "type": "DockerBuildRequest",
                "imageNames": [args.image],
                "isPushEnabled": true,
                "noCache": false,
                "sourceLocation": args.context,
                "dockerFilePath": args.file,
                "arguments": build_args.iter().map(|(k, v)| json!({"name": k, "value": v, "isSecret": false})).collect::<Vec<Value>>(),
                "platform": {"os": "Linux", "architecture": "amd64"},
                "agentConfiguration": {"cpu": 2},
            })),
            wait: true,
            label: Some(format!("Scheduling the build of {}", args.image)),
        })?;
        let run: Run = serde_json::from_value(scheduled.body).map_err(|e| {
            PluginError::new(
                ErrorCode::Protocol,
                format!("scheduleRun answered no run: {e}"),
            )
        })?;
        let run_id = run.properties.run_id.clone().unwrap_or(run.name.clone());
        ctx.progress(format!(
            "Build of {login}/{} is run {run_id} ({}); its log follows here.",
            args.image,
            run.properties.status.as_deref().unwrap_or("Queued")
        ));
        let deadline = self.follow_limit(timeout);
        self.follow(ctx, &target, &run_id, Some(&args.image), started, deadline)
    }

    /// How long a command follows a run before handing it to a follow-up: the configured
    /// `build_wait_secs`, at most the command's limit less a margin to answer in.
    fn follow_limit(&self, timeout: Duration) -> Duration {
        let limit = timeout.saturating_sub(Duration::from_secs(5));
        match self.config.build_wait_secs {
            Some(secs) => limit.min(Duration::from_secs(secs)),
            None => limit,
        }
    }

    /// `/acr run ID [--follow]`: a run's status and log tail; with `--follow`, until it ends
    /// (handing over to another follow-up at this command's limit).
    pub fn run_status(
        &self,
        ctx: &Ctx,
        args: &RunStatus,
        timeout: Duration,
    ) -> Result<Reply, PluginError> {
        let target = self.target(ctx, args.registry.as_deref())?;
        if args.follow {
            let deadline = self.follow_limit(timeout);
            return self.follow(ctx, &target, &args.id, None, Instant::now(), deadline);
        }
        let run = self.read_run(ctx, &target, &args.id)?;
        let status = run.properties.status.clone().unwrap_or_default();
        let log = match status.as_str() {
            "Queued" => String::new(),
            _ => match self.log_link(ctx, &target, &args.id)? {
                Some(link) => self.run_log(ctx, &link)?,
                None => String::new(),
            },
        };
        let images = output_images(&run);
        Ok(Reply::text(format!(
            "Run {} in {}: {status}{}{}",
            args.id,
            target.name,
            if images.is_empty() {
                String::new()
            } else {
                format!(", pushed {}", images.join(", "))
            },
            if log.is_empty() {
                String::new()
            } else {
                format!(". Log tail:\n```\n{}\n```", tail(&log, TAIL))
            }
        )))
    }

    fn read_run(&self, ctx: &Ctx, target: &Target, run_id: &str) -> Result<Run, PluginError> {
        let answer = ctx
            .arm(self.run_request(target, run_id, None)?)
            .map_err(|e| {
                if e.status == Some(404) {
                    PluginError::bad_input(
                        "id",
                        format!(
                            "{} has no run {run_id} (`/acr build` names its run)",
                            target.name
                        ),
                    )
                } else {
                    e.into()
                }
            })?;
        serde_json::from_value(answer.body).map_err(|e| {
            PluginError::new(
                ErrorCode::Protocol,
                format!("run {run_id} is not readable: {e}"),
            )
        })
    }

    fn log_link(
        &self,
        ctx: &Ctx,
        target: &Target,
        run_id: &str,
    ) -> Result<Option<String>, PluginError> {
        let answer = ctx.arm(self.run_request(target, run_id, Some("listLogSasUrl"))?)?;
        Ok(answer.body["logLink"].as_str().map(str::to_owned))
    }

    /// Follows run `run_id` until it ends or `deadline` (since `started`) comes, streaming its
    /// status and log as progress. A run still going at the deadline is handed to a follow-up
    /// (`/acr run ID --follow`), whose reply is posted in this conversation when it ends.
    fn follow(
        &self,
        ctx: &Ctx,
        target: &Target,
        run_id: &str,
        image: Option<&str>,
        started: Instant,
        deadline: Duration,
    ) -> Result<Reply, PluginError> {
        let of_image = image.map(|i| format!(" of {i}")).unwrap_or_default();
        let mut announced = String::new();
        let mut link: Option<String> = None;
        let mut shown = 0usize;
        let mut log = String::new();
        let (final_run, status) = loop {
            let current = self.read_run(ctx, target, run_id)?;
            let status = current.properties.status.clone().unwrap_or_default();
            if status != announced {
                ctx.progress(format!("Run {run_id}: {status}"));
                announced = status.clone();
            }
            if status != "Queued" {
                if link.is_none() {
                    link = self.log_link(ctx, target, run_id)?;
                }
                if let Some(link) = &link {
                    log = self.run_log(ctx, link)?;
                    let lines: Vec<&str> = log.lines().collect();
                    if lines.len() > shown {
                        let new = &lines[shown.max(lines.len().saturating_sub(STREAMED))..];
                        ctx.progress(new.join("\n"));
                        shown = lines.len();
                    }
                }
            }
            if TERMINAL.contains(&status.as_str()) {
                break (current, status);
            }
            if ctx.is_cancelled() {
                return Err(PluginError::new(
                    ErrorCode::Cancelled,
                    format!("stopped following run {run_id} (it keeps running in ACR)"),
                ));
            }
            if started.elapsed() + self.poll >= deadline {
                let line = format!("/acr run {run_id} --registry {} --follow", target.name);
                let after = u32::try_from(self.poll.as_secs())
                    .unwrap_or(u32::MAX)
                    .max(1);
                let handed_over = match ctx.follow_up(&line, after) {
                    Ok(()) => "its result will be posted here when it ends".to_owned(),
                    Err(e) => format!(
                        "it cannot be followed further ({}): `/acr run {run_id}` shows it",
                        e.message
                    ),
                };
                return Ok(Reply::text(format!(
                    "Run {run_id}{of_image} is still {status} after {} s: it keeps running in ACR; {handed_over}.",
                    started.elapsed().as_secs(),
                )));
            }
            std::thread::sleep(self.poll);
        };
        let log_tail = tail(&log, TAIL);
        if status != "Succeeded" {
            let step = failed_step(&log)
                .map(|s| format!(" at {}", s.trim()))
                .unwrap_or_default();
            return Err(PluginError::new(
                ErrorCode::Upstream,
                format!("Build run {run_id}{of_image} ended {status}{step}. Log tail:\n```\n{log_tail}\n```"),
            )
            .with_upstream(status));
        }
        let digest = final_run
            .properties
            .output_images
            .iter()
            .flatten()
            .find_map(|i| i["digest"].as_str().filter(|d| !d.is_empty()))
            .map(short_digest)
            .unwrap_or_else(|| "digest not reported".into());
        let pushed = match output_images(&final_run).as_slice() {
            [] => format!("{}/{}", target.login_server(), image.unwrap_or("its image")),
            images => images.join(", "),
        };
        let mut reply = Reply::text(format!(
            "Built and pushed {pushed} in run {run_id} ({digest}, {} s). Log tail:\n```\n{log_tail}\n```",
            started.elapsed().as_secs()
        ));
        let built: Vec<(String, String)> = match output_images(&final_run).as_slice() {
            [] => image
                .and_then(|i| i.rsplit_once(':'))
                .map(|(repo, tag)| vec![(repo.to_owned(), tag.to_owned())])
                .unwrap_or_default(),
            _ => repository_tags(&final_run),
        };
        for (repo, tag) in built {
            if let Some((label, command)) = deploy_action(&self.config.deploy_apps, &repo, &tag) {
                reply = reply.with_action(label, command);
            }
        }
        Ok(reply)
    }
}

/// `(repository, tag)` of each image a run pushed.
fn repository_tags(run: &Run) -> Vec<(String, String)> {
    run.properties
        .output_images
        .iter()
        .flatten()
        .filter_map(|i| {
            Some((
                i["repository"].as_str()?.to_owned(),
                i["tag"].as_str()?.to_owned(),
            ))
        })
        .collect()
}

/// The "Deploy" button for an image `APP-INSTANCE:TAG` of a configured app: the seeds' model
/// images (`simsvc-mpt`) are deployed with `/deploy simsvc mpt`.
fn deploy_action(apps: &[String], repo: &str, tag: &str) -> Option<(String, String)> {
    let (app, instance) = apps.iter().find_map(|app| {
        let instance = repo.strip_prefix(app.as_str())?.strip_prefix('-')?;
        Some((app, instance))
    })?;
    let valid = |v: &str, rule: NameRule| rule.check(v).is_ok();
    (valid(app, NameRule::KubeLabel)
        && valid(instance, NameRule::KubeLabel)
        && valid(tag, NameRule::ImageTag))
    .then(|| {
        (
            format!("Deploy {app} {instance}"),
            format!("/deploy {app} {instance} --tag {tag}"),
        )
    })
}

/// `registry/repository:tag` of each image a run pushed.
fn output_images(run: &Run) -> Vec<String> {
    run.properties
        .output_images
        .iter()
        .flatten()
        .filter_map(|i| {
            Some(format!(
                "{}/{}:{}",
                i["registry"].as_str()?,
                i["repository"].as_str()?,
                i["tag"].as_str()?
            ))
        })
        .collect()
}

trait WithUpstream {
    fn with_upstream(self, code: String) -> Self;
}

impl WithUpstream for PluginError {
    fn with_upstream(mut self, code: String) -> Self {
        self.upstream_code = Some(code);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_must_be_git_urls() {
        for ok in [
            "https://github.com/leaf-ai/studio-go-runner.git",
            "https://github.com/intens/simsvc.git#main:models",
            "git@github.com:intens/simsvc.git#v1.2",
        ] {
            assert!(check_context(ok).is_ok(), "{ok}");
        }
        for bad in [
            "models",
            "./models",
            "ftp://example.com/x.git",
            "https://github.com",
            "https://github.com/a b",
            "https://github.com/x.git#main:../..",
            "file:///etc",
        ] {
            assert!(check_context(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_images_of_configured_apps_get_a_deploy_button() {
        let apps = vec!["simsvc".to_owned()];
        assert_eq!(
            deploy_action(&apps, "simsvc-mpt", "1.2"),
            Some((
                "Deploy simsvc mpt".into(),
                "/deploy simsvc mpt --tag 1.2".into()
            ))
        );
        assert_eq!(deploy_action(&apps, "simsvc", "1.2"), None);
        assert_eq!(deploy_action(&apps, "studio-go-runner", "1"), None);
        assert_eq!(deploy_action(&apps, "simsvc-Bad_Name", "1"), None);
        assert_eq!(deploy_action(&[], "simsvc-mpt", "1.2"), None);
    }

    #[test]
    fn build_args_are_k_equals_v() {
        assert_eq!(
            parse_args("model=mpt.py, debug=1").unwrap(),
            [
                ("model".into(), "mpt.py".into()),
                ("debug".into(), "1".into())
            ]
        );
        assert!(parse_args("model").unwrap_err().contains("k=v"));
        assert!(parse_args("1x=2").is_err());
        assert_eq!(
            failed_step("Step 1/3 : FROM x\nStep 3/3 : RUN make\nerror"),
            Some("Step 3/3 : RUN make")
        );
        assert_eq!(tail("a\nb\nc", 2), "b\nc");
    }
}
