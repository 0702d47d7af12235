//! A typed Azure Resource Manager address: `[/subscriptions/{id}]` then `/resourceGroups`,
//! `/resourceGroups/{rg}[/providers/{namespace}/{type}/{name}...]` or
//! `/providers/{namespace}/{type}...`, with an optional trailing action segment for a POST.
//!
//! Every segment is checked when it enters (built by a plugin or parsed by the host): no `.` or
//! `..` (an HTTP client resolves them, so `agentPools/..` would address the cluster), nothing
//! empty or over-long, none of the characters that end a path segment or that Azure refuses in
//! any resource name. On the wire each segment is percent-encoded; parsing decodes first and
//! checks after, so `%2e%2e` is refused like `..`.

use std::fmt;

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, utf8_percent_encode};

/// The longest segment accepted: above every ARM resource name limit.
pub const MAX_SEGMENT: usize = 260;

/// What `utf8_percent_encode` escapes in a segment (RFC 3986 path segment, minus sub-delims we
/// never emit unescaped).
const SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'^')
    .add(b'`')
    .add(b'{')
    .add(b'|')
    .add(b'}');

/// Characters Azure refuses in resource names (and that would change what a path means).
const FORBIDDEN: &[char] = &['/', '\\', '?', '#', '%', '<', '>', '*', '&', ':'];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArmPathError {
    #[error(
        "{what} {} cannot be used in an Azure address: {reason}",
        crate::quote(value)
    )]
    Segment {
        what: String,
        value: String,
        reason: String,
    },
    #[error("ARM path {} {reason}", crate::quote(path))]
    Shape { path: String, reason: String },
}

/// Where the path starts below the (optional) subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Scope {
    /// `/resourceGroups`: the collection.
    ResourceGroups,
    /// `/resourceGroups/{name}`.
    ResourceGroup(String),
    /// Subscription level (only with a provider).
    Subscription,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArmPath {
    subscription: Option<String>,
    scope: Scope,
    /// `providers/{namespace}`, then type, name, type, name... (odd length: a trailing
    /// collection type or, for a POST, an action).
    provider: Option<(String, Vec<String>)>,
}

fn check_segment(what: &str, value: &str) -> Result<(), ArmPathError> {
    let fail = |reason: String| {
        Err(ArmPathError::Segment {
            what: what.to_owned(),
            value: value.to_owned(),
            reason,
        })
    };
    let n = value.chars().count();
    if value.is_empty() {
        return fail("it is empty".into());
    }
    if value == "." || value == ".." {
        return fail("'.' and '..' would address another resource".into());
    }
    if n > MAX_SEGMENT {
        return fail(format!("{n} characters, at most {MAX_SEGMENT} are allowed"));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return fail(format!("control character {c:?}"));
    }
    if let Some(c) = value.chars().find(|c| FORBIDDEN.contains(c)) {
        return fail(format!("{c:?} is not allowed"));
    }
    if value.starts_with(char::is_whitespace) || value.ends_with(char::is_whitespace) {
        return fail("it starts or ends with a space".into());
    }
    if value.ends_with('.') {
        return fail("it ends with '.'".into());
    }
    Ok(())
}

/// Provider namespaces and resource types are identifiers: letters, digits and `.`.
fn check_type(what: &str, value: &str) -> Result<(), ArmPathError> {
    check_segment(what, value)?;
    if value.chars().all(|c| c.is_ascii_alphanumeric() || c == '.') {
        Ok(())
    } else {
        Err(ArmPathError::Segment {
            what: what.to_owned(),
            value: value.to_owned(),
            reason: "types and namespaces are letters, digits and '.'".into(),
        })
    }
}

impl ArmPath {
    /// `/resourceGroups`.
    pub fn resource_groups() -> ArmPath {
        ArmPath {
            subscription: None,
            scope: Scope::ResourceGroups,
            provider: None,
        }
    }

    /// `/resourceGroups/{name}`.
    pub fn resource_group(name: &str) -> Result<ArmPath, ArmPathError> {
        check_segment("resource group", name)?;
        Ok(ArmPath {
            subscription: None,
            scope: Scope::ResourceGroup(name.to_owned()),
            provider: None,
        })
    }

    /// `/providers/{namespace}` at subscription level.
    pub fn subscription_provider(namespace: &str) -> Result<ArmPath, ArmPathError> {
        check_type("provider namespace", namespace)?;
        Ok(ArmPath {
            subscription: None,
            scope: Scope::Subscription,
            provider: Some((namespace.to_owned(), Vec::new())),
        })
    }

    /// The same address under an explicit subscription.
    pub fn in_subscription(mut self, id: &str) -> Result<ArmPath, ArmPathError> {
        check_segment("subscription", id)?;
        self.subscription = Some(id.to_owned());
        Ok(self)
    }

    /// `.../providers/{namespace}` below a resource group.
    pub fn provider(mut self, namespace: &str) -> Result<ArmPath, ArmPathError> {
        check_type("provider namespace", namespace)?;
        if self.provider.is_some() || !matches!(self.scope, Scope::ResourceGroup(_)) {
            return Err(self.shape("cannot take a provider here"));
        }
        self.provider = Some((namespace.to_owned(), Vec::new()));
        Ok(self)
    }

    /// `.../{type}/{name}`.
    pub fn resource(self, kind: &str, name: &str) -> Result<ArmPath, ArmPathError> {
        check_segment(kind, name)?;
        let mut path = self.push_type(kind)?;
        if let Some((_, steps)) = &mut path.provider {
            steps.push(name.to_owned());
        }
        Ok(path)
    }

    /// `.../{type}`: a collection (list).
    pub fn collection(self, kind: &str) -> Result<ArmPath, ArmPathError> {
        self.push_type(kind)
    }

    /// `.../providers/{namespace}` below a resource: an extension resource such as a role
    /// assignment on a registry (`.../registries/r/providers/Microsoft.Authorization/...`).
    /// Its resource type is the extension's own (`Microsoft.Authorization/roleAssignments`).
    pub fn extension(mut self, namespace: &str) -> Result<ArmPath, ArmPathError> {
        check_type("provider namespace", namespace)?;
        match &mut self.provider {
            Some((_, steps)) if !steps.is_empty() && steps.len() % 2 == 0 => {
                steps.push("providers".to_owned());
                steps.push(namespace.to_owned());
                Ok(self)
            }
            _ => Err(self.shape("cannot take an extension provider here")),
        }
    }

    /// `.../{action}` for a POST (`stop`, `start`, `listClusterUserCredential`).
    pub fn action(self, action: &str) -> Result<ArmPath, ArmPathError> {
        self.push_type(action)
    }

    fn push_type(mut self, kind: &str) -> Result<ArmPath, ArmPathError> {
        check_type("resource type", kind)?;
        match &mut self.provider {
            Some((_, steps)) if steps.len() % 2 == 0 => {
                steps.push(kind.to_owned());
                Ok(self)
            }
            _ => Err(self.shape("cannot take a resource type here")),
        }
    }

    fn shape(&self, reason: &str) -> ArmPathError {
        ArmPathError::Shape {
            path: self.to_string(),
            reason: reason.to_owned(),
        }
    }

    pub fn subscription(&self) -> Option<&str> {
        self.subscription.as_deref()
    }

    /// The decoded segments, in order, starting with `subscriptions/{id}` when the address has
    /// a subscription and `default_subscription` otherwise (if given).
    pub fn segments<'a>(&'a self, default_subscription: Option<&'a str>) -> Vec<&'a str> {
        let mut out = Vec::new();
        if let Some(sub) = self.subscription.as_deref().or(default_subscription) {
            out.extend(["subscriptions", sub]);
        }
        match &self.scope {
            Scope::ResourceGroups => out.push("resourceGroups"),
            Scope::ResourceGroup(rg) => out.extend(["resourceGroups", rg.as_str()]),
            Scope::Subscription => {}
        }
        if let Some((namespace, steps)) = &self.provider {
            out.extend(["providers", namespace.as_str()]);
            out.extend(steps.iter().map(String::as_str));
        }
        out
    }

    /// `(resource type, action)` for the capability check: `POST .../managedClusters/c/stop`
    /// is `(Microsoft.ContainerService/managedClusters, stop)`.
    pub fn resource_type_and_action(&self, method: &str) -> Result<(String, String), String> {
        let method = method.to_ascii_uppercase();
        let mut steps = self
            .provider
            .as_ref()
            .map_or(&[][..], |(_, s)| s.as_slice());
        let mut post_action = None;
        if method == "POST" {
            match steps.split_last() {
                Some((action, rest)) if steps.len() % 2 == 1 => {
                    post_action = Some(action.as_str());
                    steps = rest;
                }
                _ => return Err(format!("POST {self} names no action")),
            }
        }
        // An extension resource (`.../providers/Microsoft.Authorization/roleAssignments/x`
        // below a resource) has the extension's type.
        let mut namespace = self.provider.as_ref().map(|(n, _)| n);
        while let Some(at) = (0..steps.len())
            .step_by(2)
            .find(|i| steps[*i].eq_ignore_ascii_case("providers") && *i + 1 < steps.len())
        {
            namespace = Some(&steps[at + 1]);
            steps = &steps[at + 2..];
        }
        let resource_type = match namespace {
            None => "Microsoft.Resources/resourceGroups".to_owned(),
            // A provider's own action (`POST /providers/Microsoft.ContainerRegistry/
            // checkNameAvailability`) is classified under the namespace.
            Some(namespace) if steps.is_empty() && post_action.is_some() => namespace.clone(),
            Some(namespace) => {
                if steps.is_empty() {
                    return Err(format!("ARM path {self} names no resource type"));
                }
                let mut t = namespace.clone();
                for kind in steps.iter().step_by(2) {
                    t.push('/');
                    t.push_str(kind);
                }
                t
            }
        };
        let action = match (method.as_str(), post_action) {
            ("POST", Some(action)) => action.to_owned(),
            ("GET" | "HEAD", _) => "read".into(),
            ("PUT" | "PATCH", _) => "write".into(),
            ("DELETE", _) => "delete".into(),
            (other, _) => return Err(format!("unsupported ARM method {other}")),
        };
        Ok((resource_type, action))
    }

    /// Parses a path as a plugin sends it (percent-encoded segments). Refuses a query or
    /// fragment, empty, dot and over-long segments, and any shape other than the ones above.
    pub fn parse(path: &str) -> Result<ArmPath, ArmPathError> {
        let shape = |reason: &str| ArmPathError::Shape {
            path: path.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(c) = path.chars().find(|c| matches!(c, '?' | '#')) {
            return Err(shape(&format!(
                "contains {c:?}: query strings and fragments are not part of an address"
            )));
        }
        let rest = path
            .strip_prefix('/')
            .ok_or_else(|| shape("must start with '/'"))?;
        let mut decoded = Vec::new();
        for raw in rest.split('/') {
            let segment = percent_decode_str(raw)
                .decode_utf8()
                .map_err(|_| shape("has a segment that is not UTF-8 once decoded"))?;
            if raw.contains('%') && !valid_escapes(raw) {
                return Err(shape("has a '%' that is not a %XX escape"));
            }
            decoded.push(segment.into_owned());
        }
        let words: Vec<&str> = decoded.iter().map(String::as_str).collect();
        let keyword = |s: &str, k: &str| s.eq_ignore_ascii_case(k);
        let mut words = words.as_slice();
        let mut subscription = None;
        if let [first, id, rest @ ..] = words
            && keyword(first, "subscriptions")
        {
            check_segment("subscription", id)?;
            subscription = Some((*id).to_owned());
            words = rest;
        }
        let (scope, words) = match words {
            [rg] if keyword(rg, "resourceGroups") => (Scope::ResourceGroups, &[][..]),
            [rg, name, rest @ ..] if keyword(rg, "resourceGroups") => {
                check_segment("resource group", name)?;
                (Scope::ResourceGroup((*name).to_owned()), rest)
            }
            [p, ..] if keyword(p, "providers") => (Scope::Subscription, words),
            [] => return Err(shape("names no resource")),
            [other, ..] => {
                // Checked first so `..` or `%2e%2e` is named as such.
                check_segment("segment", other)?;
                return Err(shape("is not under /resourceGroups or /providers"));
            }
        };
        let provider = match words {
            [] => None,
            [p, namespace, steps @ ..] if keyword(p, "providers") => {
                check_type("provider namespace", namespace)?;
                if steps.is_empty() {
                    return Err(shape("names a provider but no resource type"));
                }
                for (i, step) in steps.iter().enumerate() {
                    if i % 2 == 0 {
                        check_type("resource type", step)?;
                    } else {
                        check_segment(steps[i - 1], step)?;
                    }
                }
                Some((
                    (*namespace).to_owned(),
                    steps.iter().map(|s| (*s).to_owned()).collect(),
                ))
            }
            [other, ..] => {
                check_segment("segment", other)?;
                return Err(shape(
                    "has something other than /providers after the resource group",
                ));
            }
        };
        if scope == Scope::ResourceGroups && provider.is_some() {
            return Err(shape("lists resource groups and names a provider"));
        }
        Ok(ArmPath {
            subscription,
            scope,
            provider,
        })
    }
}

fn valid_escapes(raw: &str) -> bool {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The percent-encoded path, without a subscription unless the address has one.
impl fmt::Display for ArmPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for segment in self.segments(None) {
            write!(f, "/{}", utf8_percent_encode(segment, SEGMENT))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const AKS: &str = "Microsoft.ContainerService";

    fn cluster(rg: &str, name: &str) -> Result<ArmPath, ArmPathError> {
        ArmPath::resource_group(rg)?
            .provider(AKS)?
            .resource("managedClusters", name)
    }

    #[test]
    fn builds_and_parses_the_paths_deckhand_uses() {
        let pool = cluster("pangeo", "pangeoCluster")
            .unwrap()
            .resource("agentPools", "gpu")
            .unwrap();
        let text = pool.to_string();
        assert_eq!(
            text,
            "/resourceGroups/pangeo/providers/Microsoft.ContainerService/managedClusters/pangeoCluster/agentPools/gpu"
        );
        assert_eq!(ArmPath::parse(&text).unwrap(), pool);
        assert_eq!(
            pool.resource_type_and_action("PUT").unwrap(),
            (format!("{AKS}/managedClusters/agentPools"), "write".into())
        );
        let stop = cluster("pangeo", "c").unwrap().action("stop").unwrap();
        assert_eq!(
            stop.resource_type_and_action("POST").unwrap(),
            (format!("{AKS}/managedClusters"), "stop".into())
        );
        let sizes = ArmPath::subscription_provider("Microsoft.Compute")
            .unwrap()
            .resource("locations", "westeurope")
            .unwrap()
            .collection("vmSizes")
            .unwrap();
        assert_eq!(
            sizes.to_string(),
            "/providers/Microsoft.Compute/locations/westeurope/vmSizes"
        );
        let full = "/subscriptions/s-1/resourceGroups/rg";
        let rg = ArmPath::parse(full).unwrap();
        assert_eq!(rg.subscription(), Some("s-1"));
        assert_eq!(
            rg.resource_type_and_action("DELETE").unwrap(),
            ("Microsoft.Resources/resourceGroups".into(), "delete".into())
        );
        assert_eq!(
            rg.segments(None).join("/"),
            "subscriptions/s-1/resourceGroups/rg"
        );
        assert_eq!(
            ArmPath::resource_groups().segments(Some("d")).join("/"),
            "subscriptions/d/resourceGroups"
        );
    }

    #[test]
    fn refuses_names_that_would_change_the_address() {
        for name in [
            "..",
            ".",
            "",
            "gpu?api-version=1",
            "gpu#frag",
            "a/b",
            "a%2e",
            "x\u{0}",
        ] {
            assert!(
                cluster("rg", "c")
                    .unwrap()
                    .resource("agentPools", name)
                    .is_err(),
                "{name:?}"
            );
        }
        assert!(cluster("rg", &"a".repeat(MAX_SEGMENT + 1)).is_err());
        for path in [
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/..",
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/%2e%2e",
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/%2E.",
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/%252e%252e",
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c?api-version=1",
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c#x",
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters//agentPools/x",
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/a%2fb",
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c/agentPools/%zz",
            "/resourceGroups/../providers/Microsoft.ContainerService/managedClusters/c",
            "/resourceGroups/rg/providers/../managedClusters/c",
            "/subscriptions/../resourceGroups/rg",
            "/resourceGroups/rg/other/x",
            "resourceGroups/rg",
            "/",
            "",
        ] {
            assert!(ArmPath::parse(path).is_err(), "{path:?} should be refused");
        }
    }

    #[test]
    fn extension_resources_have_the_extensions_type() {
        let registry = ArmPath::resource_group("rg")
            .and_then(|p| p.provider("Microsoft.ContainerRegistry"))
            .and_then(|p| p.resource("registries", "intens"))
            .unwrap();
        let assignment = registry
            .clone()
            .extension("Microsoft.Authorization")
            .and_then(|p| p.resource("roleAssignments", "0b6c1d5e-1111-2222-3333-444455556666"))
            .unwrap();
        let text = assignment.to_string();
        assert_eq!(
            text,
            "/resourceGroups/rg/providers/Microsoft.ContainerRegistry/registries/intens/providers/Microsoft.Authorization/roleAssignments/0b6c1d5e-1111-2222-3333-444455556666"
        );
        let parsed = ArmPath::parse(&text).unwrap();
        assert_eq!(
            parsed.resource_type_and_action("PUT").unwrap(),
            (
                "Microsoft.Authorization/roleAssignments".into(),
                "write".into()
            )
        );
        let list = registry
            .clone()
            .extension("Microsoft.Authorization")
            .and_then(|p| p.collection("roleAssignments"))
            .unwrap();
        assert_eq!(
            list.resource_type_and_action("GET").unwrap().0,
            "Microsoft.Authorization/roleAssignments"
        );
        let check = ArmPath::subscription_provider("Microsoft.ContainerRegistry")
            .and_then(|p| p.action("checkNameAvailability"))
            .unwrap();
        assert_eq!(
            check.resource_type_and_action("POST").unwrap(),
            (
                "Microsoft.ContainerRegistry".into(),
                "checkNameAvailability".into()
            )
        );
        // Only below a resource, never in place of a type or a name.
        assert!(
            registry
                .clone()
                .collection("runs")
                .unwrap()
                .extension("Microsoft.Authorization")
                .is_err()
        );
        assert!(
            ArmPath::resource_group("rg")
                .unwrap()
                .extension("Microsoft.Authorization")
                .is_err()
        );
    }

    #[test]
    fn classifies_like_the_capabilities_name_types() {
        let c = |method: &str, path: &str| {
            ArmPath::parse(path)
                .unwrap()
                .resource_type_and_action(method)
                .unwrap()
        };
        assert_eq!(
            c(
                "GET",
                "/subscriptions/s/providers/Microsoft.ContainerRegistry/registries"
            ),
            (
                "Microsoft.ContainerRegistry/registries".into(),
                "read".into()
            )
        );
        assert_eq!(
            c("PUT", "/resourceGroups/rg"),
            ("Microsoft.Resources/resourceGroups".into(), "write".into())
        );
        assert_eq!(
            c("GET", "/subscriptions/s/resourceGroups"),
            ("Microsoft.Resources/resourceGroups".into(), "read".into())
        );
        // Keywords are case-insensitive, as ARM's are.
        assert_eq!(
            c(
                "GET",
                "/RESOURCEGROUPS/rg/PROVIDERS/Microsoft.ContainerService/managedClusters/c"
            ),
            (format!("{AKS}/managedClusters"), "read".into())
        );
        let odd = ArmPath::parse(
            "/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/c",
        )
        .unwrap();
        assert!(
            odd.resource_type_and_action("POST").is_err(),
            "a POST needs an action"
        );
        assert!(odd.resource_type_and_action("TRACE").is_err());
    }

    #[test]
    fn encodes_what_it_allows() {
        let rg = ArmPath::resource_group("my rg(1)").unwrap();
        assert_eq!(rg.to_string(), "/resourceGroups/my%20rg(1)");
        assert_eq!(ArmPath::parse(&rg.to_string()).unwrap(), rg);
    }
}
