//! PATCH flavours: JSON merge (RFC 7386), JSON patch (RFC 6902), strategic merge (lists of
//! objects merged by their key for the common fields) and server-side apply with field managers.

use serde_json::{Map, Value};

use super::store::Owners;

/// RFC 7386 merge patch.
pub fn merge(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let t = target.as_object_mut().expect("object");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        _ => *target = patch.clone(),
    }
}

/// The key strategic merge uses for a list field, when it merges rather than replaces.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "env" | "volumes" | "imagePullSecrets" | "ports"
        | "conditions" => Some("name"),
        "volumeMounts" => Some("mountPath"),
        _ => None,
    }
}

/// Strategic merge patch for the common cases (keyed lists, `$patch: delete|replace`).
pub fn strategic(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if p.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut p = p.clone();
        p.remove("$patch");
        *target = Value::Object(p);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let t = target.as_object_mut().expect("object");
    for (k, v) in p {
        if k.starts_with('$') {
            continue;
        }
        if v.is_null() {
            t.remove(k);
            continue;
        }
        match (merge_key(k), v, t.get_mut(k)) {
            (Some(key), Value::Array(items), Some(Value::Array(existing))) => {
                let key = if k == "ports" && items.iter().all(|i| i.get("name").is_none()) {
                    "containerPort"
                } else {
                    key
                };
                for item in items {
                    let id = item.get(key).cloned();
                    let pos = id
                        .as_ref()
                        .and_then(|id| existing.iter().position(|e| e.get(key) == Some(id)));
                    let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                    match (pos, delete) {
                        (Some(i), true) => {
                            existing.remove(i);
                        }
                        (Some(i), false) => strategic(&mut existing[i], item),
                        (None, true) => {}
                        (None, false) => existing.push(item.clone()),
                    }
                }
            }
            (_, Value::Object(_), Some(cur)) => strategic(cur, v),
            _ => {
                t.insert(k.clone(), v.clone());
            }
        }
    }
}

fn unescape(tok: &str) -> String {
    tok.replace("~1", "/").replace("~0", "~")
}

fn pointer_parent<'a>(doc: &'a mut Value, path: &str) -> Result<(&'a mut Value, String), String> {
    let mut toks: Vec<String> = path.split('/').skip(1).map(unescape).collect();
    let last = toks.pop().ok_or_else(|| format!("invalid path {path:?}"))?;
    let mut cur = doc;
    for t in toks {
        cur = match cur {
            Value::Object(m) => m.get_mut(&t),
            Value::Array(a) => t.parse::<usize>().ok().and_then(move |i| a.get_mut(i)),
            _ => None,
        }
        .ok_or_else(|| format!("path {path:?} does not exist"))?;
    }
    Ok((cur, last))
}

fn add(doc: &mut Value, path: &str, v: Value) -> Result<(), String> {
    if path.is_empty() {
        *doc = v;
        return Ok(());
    }
    let (parent, last) = pointer_parent(doc, path)?;
    match parent {
        Value::Object(m) => {
            m.insert(last, v);
            Ok(())
        }
        Value::Array(a) => {
            let i = if last == "-" {
                a.len()
            } else {
                last.parse().map_err(|_| format!("bad index {last}"))?
            };
            if i > a.len() {
                return Err(format!("index {i} out of range"));
            }
            a.insert(i, v);
            Ok(())
        }
        _ => Err(format!("cannot add at {path:?}")),
    }
}

fn remove(doc: &mut Value, path: &str) -> Result<Value, String> {
    let (parent, last) = pointer_parent(doc, path)?;
    match parent {
        Value::Object(m) => m
            .remove(&last)
            .ok_or_else(|| format!("path {path:?} does not exist")),
        Value::Array(a) => {
            let i: usize = last.parse().map_err(|_| format!("bad index {last}"))?;
            (i < a.len())
                .then(|| a.remove(i))
                .ok_or_else(|| format!("index {i} out of range"))
        }
        _ => Err(format!("cannot remove at {path:?}")),
    }
}

/// RFC 6902 JSON patch.
pub fn json_patch(doc: &mut Value, ops: &Value) -> Result<(), String> {
    let ops = ops.as_array().ok_or("a JSON patch must be an array")?;
    let mut work = doc.clone();
    for op in ops {
        let path = op["path"].as_str().ok_or("op without path")?;
        match op["op"].as_str() {
            Some("add") => add(&mut work, path, op["value"].clone())?,
            Some("remove") => {
                remove(&mut work, path)?;
            }
            Some("replace") => {
                remove(&mut work, path)?;
                add(&mut work, path, op["value"].clone())?;
            }
            Some("move") => {
                let from = op["from"].as_str().ok_or("move without from")?;
                let v = remove(&mut work, from)?;
                add(&mut work, path, v)?;
            }
            Some("copy") => {
                let from = op["from"].as_str().ok_or("copy without from")?;
                let v = work
                    .pointer(from)
                    .cloned()
                    .ok_or("copy from a missing path")?;
                add(&mut work, path, v)?;
            }
            Some("test") => {
                if work.pointer(path) != Some(&op["value"]) {
                    return Err(format!("test failed at {path}"));
                }
            }
            other => return Err(format!("unknown op {other:?}")),
        }
    }
    *doc = work;
    Ok(())
}

/// Leaf paths (JSON pointers) of an applied configuration; lists are atomic leaves.
pub fn leaf_paths(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                if prefix.is_empty() && matches!(k.as_str(), "apiVersion" | "kind") {
                    continue;
                }
                if prefix == "/metadata"
                    && matches!(
                        k.as_str(),
                        "name" | "namespace" | "resourceVersion" | "managedFields"
                    )
                {
                    continue;
                }
                let p = format!("{prefix}/{}", k.replace('~', "~0").replace('/', "~1"));
                leaf_paths(v, &p, out);
            }
        }
        _ => out.push(prefix.to_string()),
    }
}

/// A server-side apply conflict: (manager, path).
pub type Conflicts = Vec<(String, String)>;

/// Server-side apply of `config` by `manager` onto `current` (None = create).
/// Returns the new object or the conflicts.
pub fn apply(
    current: Option<&Value>,
    config: &Value,
    owners: &mut Owners,
    manager: &str,
    force: bool,
) -> Result<Value, Conflicts> {
    let mut paths = Vec::new();
    leaf_paths(config, "", &mut paths);
    let mut obj = current
        .cloned()
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut conflicts = Vec::new();
    for p in &paths {
        if let Some((owner, _)) = owners.get(p)
            && owner != manager
            && obj.pointer(p) != config.pointer(p)
            && obj.pointer(p).is_some()
        {
            conflicts.push((owner.clone(), p.clone()));
        }
    }
    if !conflicts.is_empty() && !force {
        return Err(conflicts);
    }
    // Fields this manager applied before but no longer does are removed (when it owned them alone).
    let dropped: Vec<String> = owners
        .iter()
        .filter(|(p, (m, op))| m == manager && *op == "Apply" && !paths.contains(p))
        .map(|(p, _)| p.clone())
        .collect();
    for p in dropped {
        owners.remove(&p);
        let _ = remove(&mut obj, &p);
    }
    strategic(&mut obj, config);
    for p in paths {
        owners.insert(p, (manager.to_string(), "Apply"));
    }
    Ok(obj)
}

/// Records `manager` as owner of every leaf that differs between `before` and `after`.
pub fn record_update(before: Option<&Value>, after: &Value, owners: &mut Owners, manager: &str) {
    let mut paths = Vec::new();
    leaf_paths(after, "", &mut paths);
    for p in paths {
        if p.starts_with("/status")
            || p.starts_with("/metadata/")
                && !p.starts_with("/metadata/labels")
                && !p.starts_with("/metadata/annotations")
        {
            continue;
        }
        if before.and_then(|b| b.pointer(&p)) != after.pointer(&p) {
            owners.insert(p, (manager.to_string(), "Update"));
        }
    }
}

/// Renders owners as `metadata.managedFields`.
pub fn managed_fields(owners: &Owners, api_version: &str, time: &str) -> Value {
    let mut by: std::collections::BTreeMap<(String, &str), Value> = Default::default();
    for (path, (m, op)) in owners {
        let entry = by
            .entry((m.clone(), op))
            .or_insert_with(|| Value::Object(Map::new()));
        let mut cur = entry;
        let toks: Vec<String> = path.split('/').skip(1).map(unescape).collect();
        for t in toks {
            cur = cur
                .as_object_mut()
                .expect("object")
                .entry(format!("f:{t}"))
                .or_insert_with(|| Value::Object(Map::new()));
        }
    }
    Value::Array(
        by.into_iter()
            .map(|((m, op), f)| {
                serde_json::json!({"manager": m, "operation": op, "apiVersion": api_version,
                    "time": time, "fieldsType": "FieldsV1", "fieldsV1": f})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merges_containers_by_name() {
        let mut d = json!({"spec": {"containers": [{"name": "a", "image": "x:1"}, {"name": "b", "image": "y"}]}});
        strategic(
            &mut d,
            &json!({"spec": {"containers": [{"name": "a", "image": "x:2"}, {"name": "b", "$patch": "delete"}]}}),
        );
        assert_eq!(
            d,
            json!({"spec": {"containers": [{"name": "a", "image": "x:2"}]}})
        );
    }

    #[test]
    fn json_patch_ops() {
        let mut d = json!({"a": [1, 2], "b": {"c": 1}});
        json_patch(&mut d, &json!([{"op": "add", "path": "/a/-", "value": 3}, {"op": "replace", "path": "/b/c", "value": 5}, {"op": "remove", "path": "/a/0"}])).unwrap();
        assert_eq!(d, json!({"a": [2, 3], "b": {"c": 5}}));
        assert!(json_patch(&mut d, &json!([{"op": "test", "path": "/b/c", "value": 6}])).is_err());
    }

    #[test]
    fn apply_conflicts_unless_forced() {
        let mut owners = Owners::new();
        let cfg = json!({"spec": {"replicas": 2}});
        let obj = apply(None, &cfg, &mut owners, "a", false).unwrap();
        let other = json!({"spec": {"replicas": 3}});
        let err = apply(Some(&obj), &other, &mut owners, "b", false).unwrap_err();
        assert_eq!(err, vec![("a".to_string(), "/spec/replicas".to_string())]);
        let obj = apply(Some(&obj), &other, &mut owners, "b", true).unwrap();
        assert_eq!(obj["spec"]["replicas"], 3);
        assert_eq!(owners["/spec/replicas"].0, "b");
    }
}
