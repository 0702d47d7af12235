//! `/cost [--cluster C] [--week]`.

use std::sync::Arc;

use chrono::Utc;
use deckhand_plugin_abi::proto::{CommandSpec, OptionKind, OptionSpec};
use futures_util::future::BoxFuture;

use super::Cost;
use crate::router::builtins::BuiltinGroup;
use crate::router::parse::Parsed;
use crate::router::{Attachment, Invocation, Response, Router, RouterError};

pub struct CostCommands {
    cost: Arc<Cost>,
}

impl CostCommands {
    pub fn new(cost: Arc<Cost>) -> CostCommands {
        CostCommands { cost }
    }
}

impl BuiltinGroup for CostCommands {
    fn specs(&self) -> Vec<CommandSpec> {
        vec![
            CommandSpec::new(
                "cost",
                "Node-hours and cost per pool today and this week, and what schedules saved",
            )
            .option(OptionSpec::new(
                "cluster",
                OptionKind::String,
                "Only this cluster (a [[kubernetes.clusters]] name)",
            ))
            .option(OptionSpec::new(
                "week",
                OptionKind::Boolean,
                "Add the week day by day",
            ))
            .permission(""),
        ]
    }

    fn run<'a>(
        &'a self,
        _router: &'a Router,
        _invocation: &'a Invocation,
        parsed: &'a Parsed,
    ) -> BoxFuture<'a, Result<Response, RouterError>> {
        Box::pin(async move {
            let cluster = parsed.options.get("cluster").and_then(|v| v.as_str());
            let week = parsed
                .options
                .get("week")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let now = Utc::now();
            // A fresh sample, so "nodes now" is now.
            let problems = self.cost.sampler.sample_all(now).await;
            let report = self
                .cost
                .figures(now, cluster)
                .await
                .map_err(|e| RouterError::Builtin(e.to_string()))?;
            let mut text = report.render(&self.cost.tz);
            let mut files = Vec::new();
            if week {
                text.push('\n');
                text.push_str(&self.cost.week_table(&report));
                match self.cost.week_chart(&report) {
                    Ok(path) => {
                        text.push_str(&format!("\nChart: {}", path.display()));
                        // Discord gets the picture itself; the terminal has the path.
                        match std::fs::read(&path) {
                            Ok(bytes) => files.push(Attachment {
                                name: "cost-week.png".into(),
                                bytes,
                            }),
                            Err(e) => text.push_str(&format!("\nnote: chart not attached: {e}")),
                        }
                    }
                    Err(e) => text.push_str(&format!("\nnote: no chart: {e}")),
                }
            }
            for p in problems {
                text.push_str(&format!("\nnote: could not sample {p}"));
            }
            let mut response = Response::ok(text);
            response.files = files;
            Ok(response)
        })
    }
}
