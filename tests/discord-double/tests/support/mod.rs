//! A real serenity 0.12.5 client wired to the double, with a handler that reports what it saw
//! and answers interactions in a few scripted ways (by command name / custom_id).

use std::sync::Arc;
use std::time::Duration;

use deckhand_discord_double::DiscordDouble;
use serenity::all::{
    AutocompleteChoice, ButtonStyle, ChannelId, ClientBuilder, CommandDataOptionValue, Context,
    CreateActionRow, CreateAutocompleteResponse, CreateButton, CreateInteractionResponse,
    CreateInteractionResponseFollowup, CreateInteractionResponseMessage, EditInteractionResponse,
    EventHandler, GatewayIntents, Http, HttpBuilder, Interaction, Ready,
};
use tokio::sync::mpsc;

/// What the bot's handler observed or did.
#[derive(Debug, Clone)]
pub enum Seen {
    Ready {
        session_id: String,
    },
    Command {
        name: String,
        options: Vec<(String, String)>,
    },
    Component {
        custom_id: String,
        user: u64,
    },
    Autocomplete {
        name: String,
        focused: String,
        value: String,
    },
    Resumed,
    ReplyError(String),
}

struct Handler {
    tx: mpsc::UnboundedSender<Seen>,
}

fn opt_string(v: &CommandDataOptionValue) -> String {
    match v {
        CommandDataOptionValue::String(s) => s.clone(),
        CommandDataOptionValue::Integer(i) => i.to_string(),
        CommandDataOptionValue::Boolean(b) => b.to_string(),
        CommandDataOptionValue::Number(n) => n.to_string(),
        CommandDataOptionValue::SubCommand(opts) => format!(
            "[{}]",
            opts.iter()
                .map(|o| format!("{}={}", o.name, opt_string(&o.value)))
                .collect::<Vec<_>>()
                .join(",")
        ),
        other => format!("{other:?}"),
    }
}

#[serenity::async_trait]
impl EventHandler for Handler {
    async fn ready(&self, _ctx: Context, ready: Ready) {
        let _ = self.tx.send(Seen::Ready {
            session_id: ready.session_id,
        });
    }

    async fn resume(&self, _ctx: Context, _: serenity::all::ResumedEvent) {
        let _ = self.tx.send(Seen::Resumed);
    }

    async fn interaction_create(&self, ctx: Context, interaction: Interaction) {
        let result = match interaction {
            Interaction::Command(cmd) => {
                let options = cmd
                    .data
                    .options
                    .iter()
                    .map(|o| (o.name.clone(), opt_string(&o.value)))
                    .collect();
                let _ = self.tx.send(Seen::Command {
                    name: cmd.data.name.clone(),
                    options,
                });
                match cmd.data.name.as_str() {
                    // Defer (ephemeral), edit the original with progress and result, follow up.
                    "deploy" => {
                        async {
                            cmd.defer_ephemeral(&ctx.http).await?;
                            cmd.edit_response(
                                &ctx.http,
                                EditInteractionResponse::new().content("deploying…"),
                            )
                            .await?;
                            cmd.edit_response(
                                &ctx.http,
                                EditInteractionResponse::new()
                                    .content("deployed simsvc")
                                    .components(vec![CreateActionRow::Buttons(vec![
                                        CreateButton::new("confirm:1")
                                            .label("Confirm")
                                            .style(ButtonStyle::Danger),
                                    ])]),
                            )
                            .await?;
                            cmd.create_followup(
                                &ctx.http,
                                CreateInteractionResponseFollowup::new().content("done"),
                            )
                            .await?;
                            ChannelId::new(cmd.channel_id.get())
                                .say(&ctx.http, "deploy finished")
                                .await?;
                            Ok::<(), serenity::Error>(())
                        }
                        .await
                    }
                    // Defer, then edit after a while (token lifetime tests).
                    "late-edit" => {
                        async {
                            cmd.defer(&ctx.http).await?;
                            tokio::time::sleep(Duration::from_millis(800)).await;
                            cmd.edit_response(
                                &ctx.http,
                                EditInteractionResponse::new().content("result"),
                            )
                            .await?;
                            Ok(())
                        }
                        .await
                    }
                    // Answer too late (after Discord's 3 s).
                    "slow" => {
                        tokio::time::sleep(Duration::from_millis(1200)).await;
                        cmd.create_response(
                            &ctx.http,
                            CreateInteractionResponse::Message(
                                CreateInteractionResponseMessage::new().content("late"),
                            ),
                        )
                        .await
                    }
                    // Answer twice (second must fail).
                    "twice" => {
                        async {
                            let msg = CreateInteractionResponseMessage::new().content("one");
                            cmd.create_response(
                                &ctx.http,
                                CreateInteractionResponse::Message(msg.clone()),
                            )
                            .await?;
                            cmd.create_response(&ctx.http, CreateInteractionResponse::Message(msg))
                                .await
                        }
                        .await
                    }
                    _ => {
                        cmd.create_response(
                            &ctx.http,
                            CreateInteractionResponse::Message(
                                CreateInteractionResponseMessage::new()
                                    .content(format!("ran {}", cmd.data.name)),
                            ),
                        )
                        .await
                    }
                }
            }
            Interaction::Component(c) => {
                let _ = self.tx.send(Seen::Component {
                    custom_id: c.data.custom_id.clone(),
                    user: c.user.id.get(),
                });
                c.create_response(
                    &ctx.http,
                    CreateInteractionResponse::UpdateMessage(
                        CreateInteractionResponseMessage::new()
                            .content("confirmed")
                            .components(vec![]),
                    ),
                )
                .await
            }
            Interaction::Autocomplete(a) => {
                let (focused, value) = a
                    .data
                    .autocomplete()
                    .map(|f| (f.name.to_string(), f.value.to_string()))
                    .unwrap_or_default();
                let _ = self.tx.send(Seen::Autocomplete {
                    name: a.data.name.clone(),
                    focused,
                    value: value.clone(),
                });
                let choices: Vec<AutocompleteChoice> = (0..30)
                    .map(|i| {
                        AutocompleteChoice::new(format!("{value}-{i}"), format!("{value}-{i}"))
                    })
                    .collect();
                let n = if a.data.name == "too-many" { 30 } else { 25 };
                a.create_response(
                    &ctx.http,
                    CreateInteractionResponse::Autocomplete(
                        CreateAutocompleteResponse::new()
                            .set_choices(choices.into_iter().take(n).collect()),
                    ),
                )
                .await
            }
            _ => Ok(()),
        };
        if let Err(e) = result {
            let _ = self.tx.send(Seen::ReplyError(e.to_string()));
        }
    }
}

/// How serenity's HTTP client reaches the double.
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// `HttpBuilder::proxy(double.base_url())` with the ratelimiter disabled (serenity #1739).
    BaseUrlProxy,
    /// Serenity's real `https://discord.com` URLs, ratelimiter on, through a reqwest client that
    /// resolves discord.com to the double's TLS listener and trusts the test CA.
    HttpsResolve,
    /// Same, but through the double's HTTP CONNECT proxy instead of `resolve`.
    HttpsConnectProxy,
}

pub const TOKEN: &str = "MjkwOTI2NDQ0NzQ4NzM0NDY1.fake.double-token";

pub fn http_for(double: &DiscordDouble, mode: Mode) -> Http {
    match mode {
        Mode::BaseUrlProxy => HttpBuilder::new(TOKEN)
            .proxy(double.base_url())
            .ratelimiter_disabled(true)
            .build(),
        Mode::HttpsResolve | Mode::HttpsConnectProxy => {
            let ca = reqwest::Certificate::from_pem(double.ca_pem().as_bytes()).expect("CA PEM");
            let builder = reqwest::Client::builder()
                .use_rustls_tls()
                .add_root_certificate(ca);
            let builder = match mode {
                Mode::HttpsResolve => builder.resolve("discord.com", double.tls_addr()),
                _ => builder
                    .proxy(reqwest::Proxy::https(double.https_proxy_url()).expect("proxy url")),
            };
            let client = builder.build().expect("reqwest client");
            HttpBuilder::new(TOKEN).client(client).build()
        }
    }
}

pub struct Bot {
    pub seen: mpsc::UnboundedReceiver<Seen>,
    pub http: Arc<Http>,
    task: tokio::task::JoinHandle<()>,
}

impl Bot {
    pub async fn start(double: &DiscordDouble, mode: Mode) -> Bot {
        let (tx, seen) = mpsc::unbounded_channel();
        let mut client =
            ClientBuilder::new_with_http(http_for(double, mode), GatewayIntents::GUILDS)
                .event_handler(Handler { tx })
                .await
                .expect("client");
        let http = client.http.clone();
        let task = tokio::spawn(async move {
            let _ = client.start().await;
        });
        Bot { seen, http, task }
    }

    /// Next event matching `pred`, skipping others; panics after `timeout`.
    pub async fn expect(&mut self, timeout: Duration, mut pred: impl FnMut(&Seen) -> bool) -> Seen {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            match tokio::time::timeout_at(deadline, self.seen.recv()).await {
                Ok(Some(s)) if pred(&s) => return s,
                Ok(Some(s)) => skipped.push(s),
                Ok(None) | Err(_) => {
                    panic!("handler event not seen within {timeout:?}; saw {skipped:?}")
                }
            }
        }
    }
}

impl Drop for Bot {
    fn drop(&mut self) {
        self.task.abort();
    }
}
