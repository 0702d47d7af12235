//! Builders for INTERACTION_CREATE payloads: slash commands, button clicks, autocomplete.

use serde_json::{Value, json};

use crate::payloads;

/// One option of a slash command invocation (or of an autocomplete request).
#[derive(Clone, Debug)]
pub struct CommandOption {
    name: String,
    kind: u8,
    value: Option<Value>,
    options: Vec<CommandOption>,
    focused: bool,
}

impl CommandOption {
    fn leaf(name: &str, kind: u8, value: Value) -> Self {
        CommandOption {
            name: name.into(),
            kind,
            value: Some(value),
            options: Vec::new(),
            focused: false,
        }
    }
    /// A string option (type 3).
    pub fn string(name: &str, value: &str) -> Self {
        Self::leaf(name, 3, json!(value))
    }
    /// An integer option (type 4).
    pub fn integer(name: &str, value: i64) -> Self {
        Self::leaf(name, 4, json!(value))
    }
    /// A boolean option (type 5).
    pub fn boolean(name: &str, value: bool) -> Self {
        Self::leaf(name, 5, json!(value))
    }
    /// A user option (type 6); the value is the user id.
    pub fn user(name: &str, id: u64) -> Self {
        Self::leaf(name, 6, json!(id.to_string()))
    }
    /// A number option (type 10).
    pub fn number(name: &str, value: f64) -> Self {
        Self::leaf(name, 10, json!(value))
    }
    /// A subcommand (type 1) with its options.
    pub fn subcommand(name: &str, options: Vec<CommandOption>) -> Self {
        CommandOption {
            name: name.into(),
            kind: 1,
            value: None,
            options,
            focused: false,
        }
    }
    /// A subcommand group (type 2) holding subcommands.
    pub fn group(name: &str, subcommands: Vec<CommandOption>) -> Self {
        CommandOption {
            name: name.into(),
            kind: 2,
            value: None,
            options: subcommands,
            focused: false,
        }
    }
    /// Mark this option as the one being typed (autocomplete).
    #[must_use]
    pub fn focused(mut self) -> Self {
        self.focused = true;
        self
    }

    fn to_json(&self) -> Value {
        let mut o = json!({ "type": self.kind, "name": self.name });
        if let Some(v) = &self.value {
            o["value"] = v.clone();
        }
        if !self.options.is_empty() {
            o["options"] = Value::Array(self.options.iter().map(Self::to_json).collect());
        }
        if self.focused {
            o["focused"] = json!(true);
        }
        o
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Slash {
        name: String,
        options: Vec<CommandOption>,
    },
    Autocomplete {
        name: String,
        options: Vec<CommandOption>,
    },
    Button {
        custom_id: String,
        message: Option<Value>,
    },
}

/// An interaction to send to the client as an INTERACTION_CREATE dispatch.
///
/// Defaults: the example guild, channel and user ("Mason", administrator permissions) of
/// `01-slash-command-interaction.json`.
#[derive(Clone, Debug)]
pub struct InteractionBuilder {
    kind: Kind,
    user_id: u64,
    username: String,
    roles: Vec<u64>,
    permissions: String,
    channel_id: u64,
    guild_id: Option<u64>,
    dm: bool,
    locale: String,
}

impl InteractionBuilder {
    fn new(kind: Kind) -> Self {
        InteractionBuilder {
            kind,
            user_id: payloads::example_user_id(),
            username: "Mason".into(),
            roles: vec![539_082_325_061_836_999],
            permissions: "2147483647".into(),
            channel_id: payloads::example_channel_id(),
            guild_id: None,
            dm: false,
            locale: "en-US".into(),
        }
    }

    /// A slash command (`type 2`, `data.type 1`) named `name`.
    pub fn slash(name: &str) -> Self {
        Self::new(Kind::Slash {
            name: name.into(),
            options: Vec::new(),
        })
    }

    /// An autocomplete request (`type 4`) for command `name`; mark one option `.focused()`.
    pub fn autocomplete(name: &str) -> Self {
        Self::new(Kind::Autocomplete {
            name: name.into(),
            options: Vec::new(),
        })
    }

    /// A button click (`type 3`, `component_type 2`) with `custom_id`. Unless `.message(..)` is
    /// given, the clicked message is the latest one the client sent containing that custom_id,
    /// or else the example message.
    pub fn button(custom_id: &str) -> Self {
        Self::new(Kind::Button {
            custom_id: custom_id.into(),
            message: None,
        })
    }

    /// Add an option (slash / autocomplete).
    #[must_use]
    pub fn option(mut self, option: CommandOption) -> Self {
        match &mut self.kind {
            Kind::Slash { options, .. } | Kind::Autocomplete { options, .. } => {
                options.push(option)
            }
            Kind::Button { .. } => panic!("buttons have no options"),
        }
        self
    }

    /// The message the button is on (a full message object).
    #[must_use]
    pub fn message(mut self, message: Value) -> Self {
        if let Kind::Button { message: m, .. } = &mut self.kind {
            *m = Some(message);
        }
        self
    }

    /// The invoking user.
    #[must_use]
    pub fn user(mut self, id: u64, username: &str) -> Self {
        self.user_id = id;
        self.username = username.into();
        self
    }

    /// The invoking member's role ids.
    #[must_use]
    pub fn roles(mut self, roles: &[u64]) -> Self {
        self.roles = roles.to_vec();
        self
    }

    /// The invoking member's permission bits (decimal string, as Discord sends them).
    #[must_use]
    pub fn permissions(mut self, permissions: &str) -> Self {
        self.permissions = permissions.into();
        self
    }

    /// The channel it was invoked in.
    #[must_use]
    pub fn channel(mut self, channel_id: u64) -> Self {
        self.channel_id = channel_id;
        self
    }

    /// The guild (default: the double's guild).
    #[must_use]
    pub fn guild(mut self, guild_id: u64) -> Self {
        self.guild_id = Some(guild_id);
        self
    }

    /// In a DM with the bot: no `guild_id`, no `member`, the invoking `user` at the top level,
    /// a DM channel (type 1) and context 1 (BOT_DM), as Discord sends it.
    #[must_use]
    pub fn dm(mut self) -> Self {
        self.dm = true;
        self
    }

    /// The user's locale.
    #[must_use]
    pub fn locale(mut self, locale: &str) -> Self {
        self.locale = locale.into();
        self
    }

    pub(crate) fn custom_id(&self) -> Option<&str> {
        match &self.kind {
            Kind::Button {
                custom_id,
                message: None,
            } => Some(custom_id),
            _ => None,
        }
    }

    pub(crate) fn command_name(&self) -> Option<&str> {
        match &self.kind {
            Kind::Slash { name, .. } | Kind::Autocomplete { name, .. } => Some(name),
            Kind::Button { .. } => None,
        }
    }

    /// Build the complete `d` of the INTERACTION_CREATE dispatch.
    pub(crate) fn build(&self, ctx: &BuildContext) -> Value {
        let guild_id = self.guild_id.unwrap_or(ctx.guild_id);
        let mut p = match &self.kind {
            Kind::Slash { name, options } => {
                let mut p = payloads::json(payloads::SLASH);
                p["data"] = json!({
                    "type": 1,
                    "name": name,
                    "id": ctx.command_id.to_string(),
                    "options": options.iter().map(CommandOption::to_json).collect::<Vec<_>>(),
                });
                p
            }
            Kind::Autocomplete { name, options } => {
                let mut p = payloads::json(payloads::SLASH);
                let ac = payloads::json(payloads::AUTOCOMPLETE);
                p["type"] = ac["type"].clone();
                p["data"] = ac["data"].clone();
                p["data"]["name"] = json!(name);
                p["data"]["id"] = json!(ctx.command_id.to_string());
                p["data"]["options"] =
                    Value::Array(options.iter().map(CommandOption::to_json).collect());
                p
            }
            Kind::Button { custom_id, message } => {
                let mut p = payloads::json(payloads::BUTTON);
                p["data"]["custom_id"] = json!(custom_id);
                let msg = message.clone().or_else(|| ctx.clicked_message.clone());
                if let Some(m) = msg {
                    p["message"] = m;
                } else {
                    p["message"]["channel_id"] = json!(self.channel_id.to_string());
                    p["message"]["components"][0]["components"][0]["custom_id"] = json!(custom_id);
                }
                p
            }
        };
        p["id"] = json!(ctx.interaction_id.to_string());
        p["token"] = json!(ctx.token);
        p["locale"] = json!(self.locale);
        p["member"] =
            payloads::member(self.user_id, &self.username, &self.roles, &self.permissions);
        let channel_id = match &self.kind {
            Kind::Button { .. } => p["message"]["channel_id"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(self.channel_id),
            _ => self.channel_id,
        };
        payloads::complete_interaction(&mut p, ctx.application_id, guild_id, channel_id);
        if self.dm {
            payloads::as_dm(&mut p);
        }
        p
    }
}

pub(crate) struct BuildContext {
    pub(crate) interaction_id: u64,
    pub(crate) token: String,
    pub(crate) application_id: u64,
    pub(crate) guild_id: u64,
    pub(crate) command_id: u64,
    pub(crate) clicked_message: Option<Value>,
}

/// What was sent; use it to find the client's answers.
#[derive(Clone, Debug)]
pub struct SentInteraction {
    /// Interaction id.
    pub id: u64,
    /// Interaction token (also the webhook token for edits and followups).
    pub token: String,
    /// Sequence number of the dispatch.
    pub seq: u64,
    /// The full `d` payload sent.
    pub payload: Value,
}

impl SentInteraction {
    /// Whether `r` is a request answering this interaction (callback, edit, followup).
    pub fn is_answered_by(&self, r: &crate::RecordedRequest) -> bool {
        use crate::Route;
        match r.route() {
            Route::InteractionCallback { interaction_id, .. } => interaction_id == self.id,
            Route::EditOriginal { token }
            | Route::Followup { token }
            | Route::EditFollowup { token, .. } => token == self.token,
            _ => false,
        }
    }
}
