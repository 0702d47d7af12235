//! The `minio` plugin: S3 buckets of the experiment-data server (seed 002: a MinIO server on a
//! VM, used by the runners; people exchange files with `mc`), and in-cluster MinIOs.
//!
//! * `/minio buckets` — objects and bytes per bucket (counted page by page);
//! * `/minio mb NAME` — S3's bucket-name rules checked first (the router applies
//!   `NameRule::S3Bucket` before anything else);
//! * `/minio rb NAME [--force]` — destructive; a non-empty bucket is refused with its counts,
//!   and `--force` deletes only after those counts were shown;
//! * `/minio ls BUCKET[/PREFIX]` — the first keys with sizes and ages, and the total;
//! * `/minio usage` — totals, largest buckets, growth since last week (plugin state);
//! * `/minio health` — MinIO's live/ready probes, else reachability and HEAD latency;
//! * `/minio share BUCKET/KEY [--expires 1h]` — a presigned GET link, for the caller alone.
//!
//! No I/O of its own and no secrets: every S3 request goes through the host's HTTP service
//! with the endpoint's `sigv4` auth profile, and the host signs it (and presigns links).

mod address;
mod buckets;
mod commands;
mod config;
mod format;
mod health;
mod objects;
mod s3;
mod usage;
mod xml;

use commands::MinioCommand;
use config::{Endpoints, MinioConfig, PROFILE_PREFIX};
use deckhand_plugin_sdk::abi::proto::HttpCapability;
use deckhand_plugin_sdk::{
    AutocompleteQuery, Call, CallExt, Capabilities, Choice, Command, Ctx, Host, Manifest, Plugin,
    PluginError, Reply,
};
use s3::S3;

pub struct Minio {
    endpoints: Endpoints,
}

impl Minio {
    fn s3<'a>(&'a self, ctx: &'a Ctx, endpoint: Option<&str>) -> Result<S3<'a>, PluginError> {
        Ok(S3::new(ctx, self.endpoints.pick(endpoint)?))
    }
}

impl Plugin for Minio {
    type Config = MinioConfig;

    fn manifest() -> Manifest {
        Manifest {
            name: "minio".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: "MinIO / S3 buckets, usage, health and shared links".into(),
            commands: vec![MinioCommand::spec()],
            capabilities: Capabilities {
                // Endpoints come from config, so any host, but only signed by a `minio*`
                // profile of the host's config.
                http: vec![HttpCapability {
                    host: "*".into(),
                    auth_profile: Some(format!("{PROFILE_PREFIX}*")),
                }],
                kv: true,
                ..Default::default()
            },
        }
    }

    fn init(config: MinioConfig, _host: &Host) -> Result<Self, PluginError> {
        Ok(Minio {
            endpoints: Endpoints::from_config(config)?,
        })
    }

    fn call(&self, ctx: &Ctx, call: &Call) -> Result<Reply, PluginError> {
        match call.decode::<MinioCommand>()? {
            MinioCommand::Buckets(args) => {
                buckets::buckets(&self.s3(ctx, args.endpoint.as_deref())?)
            }
            MinioCommand::Mb(args) => {
                buckets::make(&self.s3(ctx, args.endpoint.as_deref())?, &args.name)
            }
            MinioCommand::Rb(args) => buckets::remove(
                ctx,
                &self.s3(ctx, args.endpoint.as_deref())?,
                &args.name,
                args.force,
            ),
            MinioCommand::Ls(args) => objects::list(
                &self.s3(ctx, args.endpoint.as_deref())?,
                &args.target,
                args.top,
            ),
            MinioCommand::Usage(args) => {
                usage::usage(ctx, &self.s3(ctx, args.endpoint.as_deref())?)
            }
            MinioCommand::Health(args) => health::health(&self.s3(ctx, args.endpoint.as_deref())?),
            MinioCommand::Share(args) => objects::share(
                &self.s3(ctx, args.endpoint.as_deref())?,
                &args.target,
                args.expires,
            ),
        }
    }

    fn autocomplete(
        &self,
        ctx: &Ctx,
        query: &AutocompleteQuery,
    ) -> Result<Vec<Choice>, PluginError> {
        match query.option.as_str() {
            "endpoint" => Ok(deckhand_plugin_sdk::choices_starting_with(
                self.endpoints.names(),
                &query.partial,
            )),
            "name" | "target" => {
                let endpoint = query.options.get("endpoint").and_then(|v| v.as_str());
                let s3 = self.s3(ctx, endpoint)?;
                let buckets = s3.list_buckets()?;
                let mut choices = deckhand_plugin_sdk::choices_starting_with(
                    buckets.iter().map(|b| b.name.as_str()),
                    &query.partial,
                );
                choices.truncate(25);
                Ok(choices)
            }
            _ => Ok(Vec::new()),
        }
    }
}

deckhand_plugin_sdk::export_plugin!(Minio);

#[cfg(test)]
mod harness_tests;
