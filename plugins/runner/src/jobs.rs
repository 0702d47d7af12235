//! `/jobs [--project P]`: per StudioML queue, what waits, what runs, who consumes, how fast it
//! drains. Waiting and consumers come from the broker (exact), in-progress and rates from the
//! management API (seconds late); the reply says which.

use std::collections::BTreeMap;

use deckhand_plugin_sdk::{Ctx, ErrorCode, PluginError, Reply};

use crate::rabbit::{self, Endpoint, Exact, ManagedQueue};

/// One queue's numbers, merged from both sources.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueStatus {
    pub name: String,
    pub project: String,
    pub experiment: String,
    /// Ready messages: exact when `exact` is true.
    pub waiting: u64,
    /// Delivered, not yet acknowledged (jobs in progress), from the management API.
    pub in_progress: u64,
    /// `basic.consume` consumers: exact when `exact` is true.
    pub consumers: u64,
    /// Acknowledgements per second over the management API's last interval.
    pub ack_rate: f64,
    /// Deliveries (consume and get) per second: activity of `basic.get` pollers too.
    pub deliver_rate: f64,
    /// Ready messages in the management API's sample (equal to `waiting` unless it lags).
    pub sampled_ready: u64,
    pub exact: bool,
}

impl QueueStatus {
    /// Queue `rmq_p_e` with these numbers (unit tests).
    #[cfg(test)]
    pub fn sample(waiting: u64, in_progress: u64, consumers: u64, ack_rate: f64) -> QueueStatus {
        QueueStatus {
            name: "rmq_p_e".into(),
            project: "p".into(),
            experiment: "e".into(),
            waiting,
            in_progress,
            consumers,
            ack_rate,
            deliver_rate: 0.0,
            sampled_ready: waiting,
            exact: true,
        }
    }

    pub fn total(&self) -> u64 {
        self.waiting.saturating_add(self.in_progress)
    }

    /// Seconds until empty at the current ack rate, if it acks at all.
    pub fn eta_secs(&self) -> Option<u64> {
        if self.ack_rate <= 0.0 || self.total() == 0 {
            return None;
        }
        let secs = (self.total() as f64 / self.ack_rate).ceil();
        (secs.is_finite() && secs < u64::MAX as f64).then_some(secs as u64)
    }

    /// Someone works on the queue: a consumer, a message in flight, or recent deliveries
    /// (runners that poll with `basic.get` show no consumer while they work).
    pub fn active(&self) -> bool {
        self.consumers > 0 || self.in_progress > 0 || self.deliver_rate > 0.0
    }
}

/// `1 h 5 min`, `3 min 20 s`, `45 s`.
pub fn human_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s} s"),
        (0, _) if s == 0 => format!("{m} min"),
        (0, _) => format!("{m} min {s} s"),
        _ if m == 0 => format!("{h} h"),
        _ => format!("{h} h {m} min"),
    }
}

fn rate(r: f64) -> String {
    if r >= 10.0 {
        format!("{r:.0}/s")
    } else {
        format!("{r:.2}/s")
    }
}

/// The job queues (of `project` when given) with both sources merged. The second value is a
/// note when the exact counts could not be had (the management API's are shown instead).
pub fn collect(
    ctx: &Ctx,
    endpoint: &Endpoint,
    project: Option<&str>,
) -> Result<(Vec<QueueStatus>, Option<String>), PluginError> {
    let bound = endpoint.job_queues(ctx)?;
    let chosen: Vec<&String> = match project {
        None => bound.iter().collect(),
        Some(p) => bound
            .iter()
            .filter(|q| rabbit::project_of(q).is_some_and(|(project, _)| project == p))
            .collect(),
    };
    if let Some(p) = project
        && chosen.is_empty()
    {
        let mut projects: Vec<&str> = bound
            .iter()
            .filter_map(|q| rabbit::project_of(q).map(|(p, _)| p))
            .collect();
        projects.dedup();
        let known = if projects.is_empty() {
            "none has queues yet".to_owned()
        } else {
            format!("projects with queues: {}", projects.join(", "))
        };
        return Err(PluginError::bad_input(
            "project",
            format!(
                "no queue rmq_{p}_<experiment> is bound to exchange {} ({known})",
                endpoint.exchange
            ),
        ));
    }
    let sampled: BTreeMap<String, ManagedQueue> = endpoint
        .queues(ctx)?
        .into_iter()
        .map(|q| (q.name.clone(), q))
        .collect();
    let mut note = None;
    let mut statuses = Vec::new();
    for name in chosen {
        let managed = sampled.get(name).cloned().unwrap_or_default();
        let exact = if note.is_none() {
            match rabbit::exact(ctx, name) {
                Ok(exact) => Some(exact),
                // Bound but deleted between the two reads: nothing to report.
                Err(e) if e.code == "not_found" => continue,
                Err(e) => {
                    note = Some(format!(
                        "exact counts unavailable ({}); waiting and consumers below are the management API's, which lag the broker by seconds",
                        e.message
                    ));
                    None
                }
            }
        } else {
            None
        };
        statuses.push(merge(name, &managed, exact));
    }
    Ok((statuses, note))
}

fn merge(name: &str, managed: &ManagedQueue, exact: Option<Exact>) -> QueueStatus {
    let (project, experiment) = rabbit::project_of(name).unwrap_or_default();
    QueueStatus {
        name: name.to_owned(),
        project: project.to_owned(),
        experiment: experiment.to_owned(),
        waiting: exact.map_or(managed.messages_ready, |e| u64::from(e.ready)),
        in_progress: managed.messages_unacknowledged,
        consumers: exact.map_or(managed.consumers, |e| u64::from(e.consumers)),
        ack_rate: managed.message_stats.ack_details.rate,
        deliver_rate: managed.message_stats.deliver_get_details.rate,
        sampled_ready: managed.messages_ready,
        exact: exact.is_some(),
    }
}

/// One line per queue.
pub fn line(q: &QueueStatus) -> String {
    let eta = match q.eta_secs() {
        Some(secs) => format!("empty in ~{}", human_secs(secs)),
        None if q.total() == 0 => "empty".to_owned(),
        None => "no acks lately, no estimate".to_owned(),
    };
    let consumers = if q.consumers == 0 && q.in_progress > 0 {
        "0 consumers (jobs in progress: runners polling with basic.get)".to_owned()
    } else {
        format!("{} consumer(s)", q.consumers)
    };
    format!(
        "• {} (project {}, experiment {}): {} waiting, {} in progress, {consumers}, acks {}, {eta}",
        q.name,
        q.project,
        q.experiment,
        q.waiting,
        q.in_progress,
        rate(q.ack_rate)
    )
}

pub fn run(ctx: &Ctx, endpoint: &Endpoint, project: Option<&str>) -> Result<Reply, PluginError> {
    let (queues, note) = collect(ctx, endpoint, project)?;
    let scope = match project {
        Some(p) => format!("project {p}"),
        None => "all projects".to_owned(),
    };
    if queues.is_empty() {
        return Ok(Reply::text(format!(
            "No StudioML job queues (rmq_<project>_<experiment>) are bound to exchange {} in vhost {} at {} ({scope}).",
            endpoint.exchange, endpoint.vhost, endpoint.management
        )));
    }
    let mut lines = vec![format!(
        "Job queues of {scope} on exchange {} (vhost {}, RabbitMQ {}):",
        endpoint.exchange, endpoint.vhost, endpoint.management
    )];
    lines.extend(queues.iter().map(line));
    let waiting: u64 = queues.iter().map(|q| q.waiting).sum();
    let running: u64 = queues.iter().map(|q| q.in_progress).sum();
    lines.push(format!(
        "Total: {waiting} waiting, {running} in progress in {} queue(s).",
        queues.len()
    ));
    lines.push(match note {
        Some(note) => format!("Note: {note}."),
        None => "Waiting and consumers are the broker's exact counts; in progress and rates come from the management API (a few seconds behind).".to_owned(),
    });
    Ok(Reply::text(lines.join("\n")))
}

/// A project name as StudioML writes it into queue names: letters, digits, `-` and `.`.
pub fn check_project(project: &str) -> Result<(), PluginError> {
    let ok = !project.is_empty()
        && project.len() <= 200
        && project
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
    if ok {
        Ok(())
    } else {
        Err(PluginError::new(
            ErrorCode::BadInput,
            format!(
                "--project {project:?}: a project is 1-200 letters, digits, '-' or '.' (it is the part of rmq_<project>_<experiment> before the experiment)"
            ),
        )
        .with_option("project"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(waiting: u64, in_progress: u64, consumers: u64, ack_rate: f64) -> QueueStatus {
        QueueStatus::sample(waiting, in_progress, consumers, ack_rate)
    }

    #[test]
    fn eta_from_total_and_ack_rate() {
        assert_eq!(status(10, 2, 1, 0.5).eta_secs(), Some(24));
        assert_eq!(status(10, 2, 1, 0.0).eta_secs(), None);
        assert_eq!(status(0, 0, 1, 3.0).eta_secs(), None);
        assert_eq!(human_secs(24), "24 s");
        assert_eq!(human_secs(3720), "1 h 2 min");
        assert_eq!(human_secs(120), "2 min");
    }

    #[test]
    fn basic_get_pollers_count_as_activity() {
        let q = status(4, 2, 0, 0.0);
        assert!(q.active());
        assert!(
            line(&q).contains("0 consumers (jobs in progress: runners polling with basic.get)")
        );
        assert!(!status(4, 0, 0, 0.0).active());
    }

    #[test]
    fn projects_are_checked() {
        assert!(check_project("mnist-2.1").is_ok());
        for bad in ["", "a_b", "a/b", "x y"] {
            assert!(check_project(bad).is_err(), "{bad}");
        }
    }
}
