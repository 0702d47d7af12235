//! Plugins' key-value state, one namespace per plugin.

use serde_json::Value;

use super::{Db, StateError, now};
use crate::args;

impl Db {
    pub fn kv_get(&self, plugin: &str, key: &str) -> Result<Option<Value>, StateError> {
        let text: Option<String> = self
            .query_opt(
                "SELECT value FROM kv WHERE plugin = ?1 AND key = ?2",
                args![plugin, key],
            )?
            .map(|row| row.get(0))
            .transpose()?;
        Ok(text.map(|t| serde_json::from_str(&t).unwrap_or(Value::String(t))))
    }

    pub fn kv_put(&self, plugin: &str, key: &str, value: &Value) -> Result<(), StateError> {
        self.execute(
            "INSERT INTO kv (plugin, key, value, updated_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (plugin, key) DO UPDATE SET value = excluded.value,
                                                     updated_at = excluded.updated_at",
            args![plugin, key, value.to_string(), now()],
        )?;
        Ok(())
    }

    pub fn kv_delete(&self, plugin: &str, key: &str) -> Result<bool, StateError> {
        let changed = self.execute(
            "DELETE FROM kv WHERE plugin = ?1 AND key = ?2",
            args![plugin, key],
        )?;
        Ok(changed > 0)
    }

    /// Keys starting with `prefix`, sorted.
    pub fn kv_list(&self, plugin: &str, prefix: &str) -> Result<Vec<(String, Value)>, StateError> {
        let rows = self.query(
            "SELECT key, value FROM kv WHERE plugin = ?1 AND substr(key, 1, length(CAST(?2 AS TEXT))) = ?2
             ORDER BY key",
            args![plugin, prefix],
        )?;
        rows.iter()
            .map(|row| {
                let (key, text): (String, String) = (row.get(0)?, row.get(1)?);
                let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
                Ok((key, value))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn namespaces_are_per_plugin() {
        let db = Db::in_memory().unwrap();
        db.kv_put("a", "pool/gpu", &json!({"count": 2})).unwrap();
        db.kv_put("a", "pool/cpu", &json!(1)).unwrap();
        db.kv_put("b", "pool/gpu", &json!("other")).unwrap();
        assert_eq!(
            db.kv_get("a", "pool/gpu").unwrap(),
            Some(json!({"count": 2}))
        );
        assert_eq!(db.kv_get("b", "pool/gpu").unwrap(), Some(json!("other")));
        let keys: Vec<_> = db
            .kv_list("a", "pool/")
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(keys, ["pool/cpu", "pool/gpu"]);
        assert!(db.kv_delete("a", "pool/gpu").unwrap());
        assert!(!db.kv_delete("a", "pool/gpu").unwrap());
        assert_eq!(db.kv_get("a", "pool/gpu").unwrap(), None);
    }
}
