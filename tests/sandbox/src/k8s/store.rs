//! A generic JSON object store with resource versions, watch history and field ownership.

use std::collections::{BTreeMap, HashMap, VecDeque};

use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio::sync::broadcast;

/// Identity of an object: (resource key, namespace or "", name).
pub type ObjKey = (String, String, String);

/// A change, as watches see it.
#[derive(Debug, Clone)]
pub struct Change {
    /// Resource version after the change.
    pub rv: u64,
    /// Resource key (`deployments.apps`).
    pub res: String,
    /// Namespace ("" for cluster-scoped).
    pub ns: String,
    /// ADDED / MODIFIED / DELETED.
    pub kind: &'static str,
    /// The object after the change (before, for DELETED).
    pub obj: Value,
}

/// Who owns a field (JSON pointer) and how they set it.
pub type Owners = BTreeMap<String, (String, &'static str)>;

/// One cluster's objects.
#[derive(Debug)]
pub struct Store {
    /// Current resource version.
    pub rv: u64,
    /// Objects.
    pub objects: BTreeMap<ObjKey, Value>,
    /// Recent changes, oldest first.
    pub history: VecDeque<Change>,
    /// Oldest resource version a watch may resume from.
    pub oldest: u64,
    /// Capacity of `history`.
    pub cap: usize,
    /// Live watchers.
    pub tx: broadcast::Sender<Change>,
    /// Field owners per object.
    pub owners: HashMap<ObjKey, Owners>,
}

/// RFC 3339 timestamp with seconds, as Kubernetes writes them.
pub fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Store {
    /// An empty store.
    pub fn new(cap: usize) -> Self {
        let (tx, _) = broadcast::channel(4096);
        Self {
            rv: 1,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest: 1,
            cap: cap.max(1),
            tx,
            owners: HashMap::new(),
        }
    }

    fn record(&mut self, res: &str, ns: &str, kind: &'static str, obj: Value) {
        let c = Change {
            rv: self.rv,
            res: res.to_string(),
            ns: ns.to_string(),
            kind,
            obj,
        };
        self.history.push_back(c.clone());
        while self.history.len() > self.cap {
            if let Some(old) = self.history.pop_front() {
                self.oldest = old.rv;
            }
        }
        let _ = self.tx.send(c);
    }

    /// Gets an object.
    pub fn get(&self, res: &str, ns: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&(res.to_string(), ns.to_string(), name.to_string()))
    }

    /// Objects of a resource, optionally in one namespace.
    pub fn list(&self, res: &str, ns: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((r, n, _), _)| r == res && ns.is_none_or(|x| x == n))
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Stores a new object: fills uid, creationTimestamp, resourceVersion, generation.
    pub fn create(&mut self, res: &str, ns: &str, mut obj: Value) -> Value {
        self.rv += 1;
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let m = &mut obj["metadata"];
        m["uid"] = json!(uuid::Uuid::new_v4().to_string());
        m["creationTimestamp"] = json!(now());
        m["resourceVersion"] = json!(self.rv.to_string());
        if !ns.is_empty() {
            m["namespace"] = json!(ns);
        }
        if obj.get("spec").is_some() {
            obj["metadata"]["generation"] = json!(1);
        }
        self.objects
            .insert((res.into(), ns.into(), name), obj.clone());
        self.record(res, ns, "ADDED", obj.clone());
        obj
    }

    /// Replaces an object (keeping uid/creationTimestamp); no-op if nothing changed.
    pub fn update(&mut self, res: &str, ns: &str, mut obj: Value) -> Value {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let k: ObjKey = (res.into(), ns.into(), name);
        let Some(old) = self.objects.get(&k).cloned() else {
            return self.create(res, ns, obj);
        };
        for f in ["uid", "creationTimestamp", "resourceVersion", "generation"] {
            obj["metadata"][f] = old["metadata"][f].clone();
        }
        if !ns.is_empty() {
            obj["metadata"]["namespace"] = json!(ns);
        }
        if obj["metadata"]
            .get("generation")
            .is_some_and(|g| !g.is_null())
            && obj["spec"] != old["spec"]
        {
            obj["metadata"]["generation"] =
                json!(old["metadata"]["generation"].as_i64().unwrap_or(1) + 1);
        }
        if obj["metadata"]["generation"].is_null() {
            obj["metadata"]
                .as_object_mut()
                .map(|m| m.remove("generation"));
        }
        // As the API server's IgnoreManagedFieldsTimestampsTransformer: an update that would
        // only move managedFields timestamps (a no-op server-side apply) changes nothing.
        if without_field_times(&obj) == without_field_times(&old) {
            return old;
        }
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.objects.insert(k, obj.clone());
        self.record(res, ns, "MODIFIED", obj.clone());
        obj
    }

    /// Deletes an object, returning it.
    pub fn delete(&mut self, res: &str, ns: &str, name: &str) -> Option<Value> {
        let k: ObjKey = (res.into(), ns.into(), name.into());
        let mut obj = self.objects.remove(&k)?;
        self.owners.remove(&k);
        self.rv += 1;
        obj["metadata"]["resourceVersion"] = json!(self.rv.to_string());
        self.record(res, ns, "DELETED", obj.clone());
        Some(obj)
    }

    /// Forgets history (etcd compaction).
    pub fn compact(&mut self) {
        self.history.clear();
        self.oldest = self.rv;
    }
}

/// The object without `metadata.managedFields[].time`.
fn without_field_times(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Some(fields) = obj
        .pointer_mut("/metadata/managedFields")
        .and_then(Value::as_array_mut)
    {
        for field in fields.iter_mut().filter_map(Value::as_object_mut) {
            field.remove("time");
        }
    }
    obj
}
