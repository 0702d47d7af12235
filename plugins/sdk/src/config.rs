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
    serde_path_to_error::deserialize(section).map_err(|e| {
        // The path names the key a wrong type is about (`default_cluster`, `apps.simsvc.port`);
        // an unknown or missing key is named by serde between backticks instead.
        let path = e.path().to_string();
        let text = e.into_inner().to_string();
        let named = text
            .contains("field `")
            .then(|| text.split('`').nth(1).map(str::to_owned))
            .flatten();
        // Where the problem is: for an unknown field the path ends with that field itself.
        let place = match &named {
            Some(name) if path == *name => ".".to_owned(),
            Some(name) => path
                .strip_suffix(&format!(".{name}"))
                .unwrap_or(&path)
                .to_owned(),
            None => path.clone(),
        };
        let top = place.split(['.', '[']).next().unwrap_or_default();
        let (message, key) = if place == "." {
            (format!("[plugins.config.{plugin}]: {text}"), named)
        } else {
            (
                format!("[plugins.config.{plugin}] {place}: {text}"),
                Some(top.to_owned()),
            )
        };
        let error = PluginError::new(ErrorCode::Config, message);
        match key {
            Some(key) => error.with_option(&key),
            None => error,
        }
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
        #[serde(default)]
        replicas: Option<u32>,
    }

    #[test]
    fn a_wrong_type_names_its_key() {
        let error = decode::<Settings>("vk", json!({"subnet": 3})).unwrap_err();
        assert_eq!(error.option.as_deref(), Some("subnet"));
        assert!(
            error
                .message
                .starts_with("[plugins.config.vk] subnet: invalid type: integer `3`"),
            "{}",
            error.message
        );
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
            Settings {
                subnet: None,
                replicas: None
            }
        );
    }
}
