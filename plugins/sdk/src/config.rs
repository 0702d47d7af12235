//! A plugin's typed config: its `[plugins.config.NAME]` section decoded into
//! [`crate::Plugin::Config`]. A struct with `#[serde(deny_unknown_fields)]` turns a mistyped key
//! into an error naming the key (`option`), which `deckhand check` turns into a file and line.

use deckhand_plugin_abi::proto::ErrorCode;
use deckhand_plugin_abi::proto::PluginError;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Decodes the section; a missing section (`null`) reads as an empty table, so a config whose
/// keys all have defaults needs none.
pub fn decode<T: DeserializeOwned>(plugin: &str, section: Value) -> Result<T, PluginError> {
    let section = match section {
        Value::Null => Value::Object(Default::default()),
        other => other,
    };
    serde_json::from_value(section).map_err(|e| {
        let text = e.to_string();
        let mut error = PluginError::new(
            ErrorCode::Config,
            format!("[plugins.config.{plugin}]: {text}"),
        );
        // serde names the key between backticks: "unknown field `aci_subnt`, expected …",
        // "missing field `x`".
        if let Some(key) = text.split('`').nth(1) {
            error = error.with_option(key);
        }
        error
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Settings {
        #[serde(default)]
        subnet: Option<String>,
    }

    #[test]
    fn unknown_keys_are_refused_naming_the_key() {
        let error = decode::<Settings>("vk", json!({"subnt": "x"})).unwrap_err();
        assert_eq!(error.code, ErrorCode::Config);
        assert_eq!(error.option.as_deref(), Some("subnt"));
        assert!(
            error
                .message
                .starts_with("[plugins.config.vk]: unknown field `subnt`"),
            "{}",
            error.message
        );
        assert_eq!(
            decode::<Settings>("vk", Value::Null).unwrap(),
            Settings { subnet: None }
        );
    }
}
