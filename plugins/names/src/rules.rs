//! Naming rules as Azure ("Naming rules and restrictions for Azure resources") and Kubernetes
//! (`k8s.io/apimachinery/pkg/util/validation`) state them. A manifest names the rule of each
//! option (`OptionSpec::rule`); the router checks it before anything else happens.

use serde::{Deserialize, Serialize};

use crate::quote;

/// One system's rule for one kind of name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NameRule {
    /// Resource group: 1-90 letters, digits, `_ - . ( )`, not ending with `.`.
    ResourceGroup,
    /// AKS cluster (`managedClusters`): 1-63 letters, digits, `_ -`, starting and ending
    /// alphanumeric.
    AksCluster,
    /// AKS agent pool (Linux): 1-12 lowercase letters and digits, starting with a letter.
    AgentPool,
    /// Virtual network: 2-64 letters, digits, `_ . -`, starting alphanumeric, ending
    /// alphanumeric or `_`.
    VirtualNetwork,
    /// Subnet: 1-80, otherwise as a virtual network.
    Subnet,
    /// Container registry: 5-50 letters and digits.
    ContainerRegistry,
    /// Container group (ACI): 1-63 lowercase letters, digits and `-`, no leading, trailing or
    /// double `-`.
    ContainerGroup,
    /// Azure region as ARM spells it: 1-40 lowercase letters and digits (`westeurope`).
    Location,
    /// VM size: 1-64 letters, digits and `_` (`Standard_NC6s_v3`).
    VmSize,
    /// Kubernetes namespace, container, Service: RFC 1123 label (1-63 of `a-z 0-9 -`,
    /// alphanumeric at both ends).
    KubeLabel,
    /// Kubernetes object name (Pod, Deployment, ConfigMap, Node): RFC 1123 subdomain (1-253,
    /// dot-separated labels).
    KubeName,
    /// Label key: optional DNS-subdomain prefix and `/`, then 1-63 of `A-Z a-z 0-9 - _ .`,
    /// alphanumeric at both ends.
    LabelKey,
    /// Label value: empty, or as a label key's name part.
    LabelValue,
    /// `key=value,key2=value2` of label keys and values.
    Labels,
    /// `key=value:Effect,...` (value optional) with effect NoSchedule, PreferNoSchedule or
    /// NoExecute.
    Taints,
    /// Image repository (OCI distribution): lowercase path components of `a-z 0-9` joined by
    /// `.`, `_`, `__` or `-`, separated by `/`; at most 255.
    Repository,
    /// Image tag: 1-128 of `A-Z a-z 0-9 _ . -`, not starting with `.` or `-`.
    ImageTag,
    /// S3 bucket (AWS "General purpose bucket naming rules", which MinIO follows): 3-63 of
    /// `a-z 0-9 . -`, alphanumeric at both ends, no `..`, not an IP address, none of the
    /// reserved prefixes (`xn--`, `sthree-`, `amzn-s3-demo-`) and suffixes (`-s3alias`,
    /// `--ol-s3`, `.mrap`, `--x-s3`, `--table-s3`).
    S3Bucket,
    /// `repository:tag`: a [`NameRule::Repository`] and a [`NameRule::ImageTag`].
    TaggedImage,
    /// Dask Gateway cluster, as the gateway names them (`[namespace.]hex-id`): 1-253 of
    /// `A-Z a-z 0-9 . - _`, not starting with `.`, no `..`.
    DaskCluster,
    /// ACR token (repository-scoped credential) or its scope map: 5-50 letters, digits and `-`.
    AcrToken,
    /// ACR Tasks run id (`ca1`): 1-50 letters, digits, `-` and `_`.
    AcrRun,
}

/// A name that breaks its rule: what was given, which rule, why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{} is not valid: {} ({reason})", quote(value), rule.describe())]
pub struct NameError {
    pub rule: NameRule,
    pub value: String,
    pub reason: String,
}

type Check = Result<(), String>;

fn length(value: &str, min: usize, max: usize) -> Check {
    let n = value.chars().count();
    if n < min {
        Err(if n == 0 {
            "it is empty".into()
        } else {
            format!("{n} characters, at least {min} are needed")
        })
    } else if n > max {
        Err(format!("{n} characters, at most {max} are allowed"))
    } else {
        Ok(())
    }
}

fn only(value: &str, allowed: impl Fn(char) -> bool) -> Check {
    match value.chars().find(|c| !allowed(*c)) {
        None => Ok(()),
        Some(c) => Err(format!("{c:?} is not allowed")),
    }
}

fn first(value: &str, ok: impl Fn(char) -> bool, what: &str) -> Check {
    match value.chars().next() {
        Some(c) if !ok(c) => Err(format!("it must start with {what}")),
        _ => Ok(()),
    }
}

fn last(value: &str, ok: impl Fn(char) -> bool, what: &str) -> Check {
    match value.chars().last() {
        Some(c) if !ok(c) => Err(format!("it must end with {what}")),
        _ => Ok(()),
    }
}

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn dns_label(value: &str) -> Check {
    length(value, 1, 63)?;
    only(value, |c| lower_alnum(c) || c == '-')?;
    first(value, lower_alnum, "a lowercase letter or digit")?;
    last(value, lower_alnum, "a lowercase letter or digit")
}

fn dns_subdomain(value: &str) -> Check {
    length(value, 1, 253)?;
    for label in value.split('.') {
        if label.is_empty() {
            return Err("it has an empty part between dots".into());
        }
        dns_label(label)?;
    }
    Ok(())
}

/// The `name` of a label key or a label value: alphanumeric at both ends, `-_.` inside.
fn qualified_name(value: &str) -> Check {
    length(value, 1, 63)?;
    let alnum = |c: char| c.is_ascii_alphanumeric();
    only(value, |c| alnum(c) || matches!(c, '-' | '_' | '.'))?;
    first(value, alnum, "a letter or digit")?;
    last(value, alnum, "a letter or digit")
}

fn label_key(value: &str) -> Check {
    match value.rsplit_once('/') {
        Some((prefix, name)) => {
            dns_subdomain(prefix).map_err(|e| format!("prefix {}: {e}", quote(prefix)))?;
            qualified_name(name)
        }
        None => qualified_name(value),
    }
}

fn label_value(value: &str) -> Check {
    if value.is_empty() {
        Ok(())
    } else {
        qualified_name(value)
    }
}

fn labels(value: &str) -> Check {
    for pair in value.split(',') {
        let (key, val) = pair
            .split_once('=')
            .ok_or_else(|| format!("{} has no '='", quote(pair)))?;
        label_key(key).map_err(|e| format!("key {}: {e}", quote(key)))?;
        label_value(val).map_err(|e| format!("value {}: {e}", quote(val)))?;
    }
    Ok(())
}

const TAINT_EFFECTS: [&str; 3] = ["NoSchedule", "PreferNoSchedule", "NoExecute"];

fn taints(value: &str) -> Check {
    for taint in value.split(',') {
        let (kv, effect) = taint
            .rsplit_once(':')
            .ok_or_else(|| format!("{} has no ':Effect'", quote(taint)))?;
        if !TAINT_EFFECTS.contains(&effect) {
            return Err(format!(
                "effect {} is not one of {}",
                quote(effect),
                TAINT_EFFECTS.join(", ")
            ));
        }
        let (key, val) = kv.split_once('=').unwrap_or((kv, ""));
        label_key(key).map_err(|e| format!("key {}: {e}", quote(key)))?;
        label_value(val).map_err(|e| format!("value {}: {e}", quote(val)))?;
    }
    Ok(())
}

fn repository(value: &str) -> Check {
    length(value, 1, 255)?;
    for component in value.split('/') {
        if component.is_empty() {
            return Err("it has an empty path component".into());
        }
        only(component, |c| {
            lower_alnum(c) || matches!(c, '.' | '_' | '-')
        })?;
        first(component, lower_alnum, "a lowercase letter or digit")?;
        last(component, lower_alnum, "a lowercase letter or digit")?;
        let separators = component.split(lower_alnum).filter(|s| !s.is_empty());
        for sep in separators {
            if !(sep == "." || sep == "_" || sep == "__" || sep.chars().all(|c| c == '-')) {
                return Err(format!("separator {} is not allowed", quote(sep)));
            }
        }
    }
    Ok(())
}

fn s3_bucket(value: &str) -> Check {
    length(value, 3, 63)?;
    only(value, |c| lower_alnum(c) || matches!(c, '.' | '-'))?;
    first(value, lower_alnum, "a lowercase letter or digit")?;
    last(value, lower_alnum, "a lowercase letter or digit")?;
    if value.contains("..") {
        return Err("it contains '..'".into());
    }
    if value.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("it is formatted as an IP address".into());
    }
    if let Some(prefix) = ["xn--", "sthree-", "amzn-s3-demo-"]
        .into_iter()
        .find(|p| value.starts_with(p))
    {
        return Err(format!("the prefix {} is reserved", quote(prefix)));
    }
    if let Some(suffix) = ["-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"]
        .into_iter()
        .find(|s| value.ends_with(s))
    {
        return Err(format!("the suffix {} is reserved", quote(suffix)));
    }
    Ok(())
}

impl NameRule {
    /// The rule in words, as error messages show it.
    pub fn describe(self) -> &'static str {
        match self {
            NameRule::ResourceGroup => {
                "resource group names are 1-90 letters, digits, '_', '-', '.', '(' and ')', not ending with '.'"
            }
            NameRule::AksCluster => {
                "AKS cluster names are 1-63 letters, digits, '_' and '-', starting and ending with a letter or digit"
            }
            NameRule::AgentPool => {
                "AKS pool names are 1-12 lowercase letters and digits, starting with a letter (e.g. gpu)"
            }
            NameRule::VirtualNetwork => {
                "virtual network names are 2-64 letters, digits, '_', '.' and '-', starting with a letter or digit and ending with a letter, digit or '_'"
            }
            NameRule::Subnet => {
                "subnet names are 1-80 letters, digits, '_', '.' and '-', starting with a letter or digit and ending with a letter, digit or '_'"
            }
            NameRule::ContainerRegistry => "registry names are 5-50 letters and digits",
            NameRule::ContainerGroup => {
                "container group names are 1-63 lowercase letters, digits and '-', with no '-' at either end and no '--'"
            }
            NameRule::Location => {
                "Azure regions are written in lowercase letters and digits (e.g. westeurope)"
            }
            NameRule::VmSize => "VM sizes are letters, digits and '_' (e.g. Standard_NC6s_v3)",
            NameRule::KubeLabel => {
                "Kubernetes names are 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
            }
            NameRule::KubeName => {
                "Kubernetes object names are 1-253 lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit"
            }
            NameRule::LabelKey => {
                "label keys are [prefix/]name: name is 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit; prefix is a DNS subdomain"
            }
            NameRule::LabelValue => {
                "label values are empty or 1-63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
            }
            NameRule::Labels => {
                "labels are key=value pairs separated by commas (e.g. team=ml,tier=gpu)"
            }
            NameRule::Taints => {
                "taints are key[=value]:Effect separated by commas, Effect one of NoSchedule, PreferNoSchedule, NoExecute (e.g. nvidia.com/gpu=present:NoSchedule)"
            }
            NameRule::Repository => {
                "repository names are lowercase letters and digits separated by '.', '_', '__' or '-', in '/'-separated parts (e.g. studio/runner)"
            }
            NameRule::ImageTag => {
                "tags are 1-128 letters, digits, '_', '.' and '-', not starting with '.' or '-' (e.g. v1.2.0)"
            }
            NameRule::S3Bucket => {
                "S3 bucket names are 3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit, without '..', not an IP address, not starting with 'xn--', 'sthree-' or 'amzn-s3-demo-' and not ending with '-s3alias', '--ol-s3', '.mrap', '--x-s3' or '--table-s3' (e.g. experiment-data)"
            }
            NameRule::DaskCluster => {
                "Dask Gateway cluster names are letters, digits, '.', '-' and '_' as /daskhub clusters shows them (e.g. dhub.0d1f3c6a4b5e4f2a9c3b1e2d4f5a6b7c)"
            }
            NameRule::AcrToken => "token names are 5-50 letters, digits and '-' (e.g. ci-simsvc)",
            NameRule::AcrRun => "run ids are 1-50 letters, digits, '-' and '_' (e.g. ca1)",
            NameRule::TaggedImage => {
                "images are repository:tag, the repository lowercase letters and digits separated by '.', '_', '__' or '-' in '/'-separated parts, the tag 1-128 letters, digits, '_', '.' and '-' (e.g. simsvc-mpt:1.2)"
            }
        }
    }

    /// Checks `value` against the rule.
    pub fn check(self, value: &str) -> Result<(), NameError> {
        self.reason(value).map_err(|reason| NameError {
            rule: self,
            value: value.to_owned(),
            reason,
        })
    }

    fn reason(self, value: &str) -> Check {
        let alnum = |c: char| c.is_ascii_alphanumeric();
        match self {
            NameRule::ResourceGroup => {
                length(value, 1, 90)?;
                only(value, |c| {
                    alnum(c) || matches!(c, '_' | '-' | '.' | '(' | ')')
                })?;
                last(value, |c| c != '.', "something other than '.'")
            }
            NameRule::AksCluster => {
                length(value, 1, 63)?;
                only(value, |c| alnum(c) || matches!(c, '_' | '-'))?;
                first(value, alnum, "a letter or digit")?;
                last(value, alnum, "a letter or digit")
            }
            NameRule::AgentPool => {
                length(value, 1, 12)?;
                only(value, lower_alnum)?;
                first(value, |c| c.is_ascii_lowercase(), "a lowercase letter")
            }
            NameRule::VirtualNetwork | NameRule::Subnet => {
                let (min, max) = if self == NameRule::Subnet {
                    (1, 80)
                } else {
                    (2, 64)
                };
                length(value, min, max)?;
                only(value, |c| alnum(c) || matches!(c, '_' | '.' | '-'))?;
                first(value, alnum, "a letter or digit")?;
                last(value, |c| alnum(c) || c == '_', "a letter, digit or '_'")
            }
            NameRule::ContainerRegistry => {
                length(value, 5, 50)?;
                only(value, alnum)
            }
            NameRule::ContainerGroup => {
                dns_label(value)?;
                if value.contains("--") {
                    return Err("it contains '--'".into());
                }
                Ok(())
            }
            NameRule::Location => {
                length(value, 1, 40)?;
                only(value, lower_alnum)
            }
            NameRule::VmSize => {
                length(value, 1, 64)?;
                only(value, |c| alnum(c) || c == '_')?;
                first(value, alnum, "a letter or digit")
            }
            NameRule::KubeLabel => dns_label(value),
            NameRule::KubeName => dns_subdomain(value),
            NameRule::LabelKey => label_key(value),
            NameRule::LabelValue => label_value(value),
            NameRule::Labels => labels(value),
            NameRule::Taints => taints(value),
            NameRule::Repository => repository(value),
            NameRule::ImageTag => {
                length(value, 1, 128)?;
                only(value, |c| alnum(c) || matches!(c, '_' | '.' | '-'))?;
                first(value, |c| alnum(c) || c == '_', "a letter, digit or '_'")
            }
            NameRule::S3Bucket => s3_bucket(value),
            NameRule::AcrToken => {
                length(value, 5, 50)?;
                only(value, |c| alnum(c) || c == '-')
            }
            NameRule::AcrRun => {
                length(value, 1, 50)?;
                only(value, |c| alnum(c) || matches!(c, '-' | '_'))
            }
            NameRule::DaskCluster => {
                length(value, 1, 253)?;
                only(value, |c| alnum(c) || matches!(c, '.' | '-' | '_'))?;
                first(value, |c| c != '.', "a letter, digit, '-' or '_'")?;
                if value.contains("..") {
                    return Err("it contains '..'".into());
                }
                Ok(())
            }
            NameRule::TaggedImage => {
                let (repo, tag) = value
                    .rsplit_once(':')
                    .ok_or_else(|| "it has no ':tag'".to_owned())?;
                repository(repo).map_err(|e| format!("the repository: {e}"))?;
                NameRule::ImageTag
                    .reason(tag)
                    .map_err(|e| format!("the tag: {e}"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NameRule::{self, *};

    fn ok(rule: NameRule, values: &[&str]) {
        for v in values {
            assert!(rule.check(v).is_ok(), "{rule:?} should accept {v:?}");
        }
    }

    fn bad(rule: NameRule, values: &[&str]) {
        for v in values {
            assert!(rule.check(v).is_err(), "{rule:?} should refuse {v:?}");
        }
    }

    #[test]
    fn azure_names() {
        ok(AgentPool, &["gpu", "users", "spot1", "abcdefghijkl"]);
        bad(
            AgentPool,
            &[
                "",
                ".",
                "..",
                "GPU",
                "1gpu",
                "abcdefghijklm",
                "gpu-1",
                "gpu?x",
            ],
        );
        ok(AksCluster, &["pangeoCluster", "a", "my_cluster-2"]);
        bad(
            AksCluster,
            &["", "..", "-a", "a-", "x?api-version=1", "a/b", "a.b"],
        );
        ok(
            ResourceGroup,
            &[
                "pangeo",
                "rg-1_(test).x",
                "MC_pangeo_pangeoCluster_westeurope",
            ],
        );
        bad(
            ResourceGroup,
            &["", "rg.", "..", ".", "a/b", "a%2e", &"r".repeat(91)],
        );
        ok(Subnet, &["aks-subnet", "virtual-node-aci", "a_"]);
        bad(Subnet, &["", "-a", "a-", "a.", "a b", &"s".repeat(81)]);
        ok(ContainerRegistry, &["intens", "Intens2"]);
        bad(ContainerRegistry, &["abc", "in-tens", &"a".repeat(51)]);
        ok(ContainerGroup, &["simsvc-mpt-worker"]);
        bad(ContainerGroup, &["a--b", "-a", "A"]);
    }

    #[test]
    fn s3_bucket_names() {
        ok(
            S3Bucket,
            &[
                "experiment-data",
                "abc",
                "my.bucket.1",
                "10.0.0.x",
                &"b".repeat(63),
            ],
        );
        bad(
            S3Bucket,
            &[
                "ab",
                &"b".repeat(64),
                "Experiment",
                "my_bucket",
                "-abc",
                "abc-",
                ".abc",
                "a..b",
                "192.168.5.4",
                "xn--abc",
                "sthree-data",
                "data-s3alias",
                "data--ol-s3",
                "data.mrap",
                "a/b",
                "a%2fb",
            ],
        );
        let error = S3Bucket.check("192.168.5.4").unwrap_err().to_string();
        assert!(error.contains("formatted as an IP address"), "{error}");
        assert!(error.contains("3-63 lowercase letters"), "{error}");
        let error = S3Bucket.check("xn--data").unwrap_err().to_string();
        assert!(error.contains("the prefix \"xn--\" is reserved"), "{error}");
    }

    #[test]
    fn kubernetes_names() {
        ok(KubeLabel, &["kube-system", "mpt", "a1"]);
        bad(
            KubeLabel,
            &[
                "",
                ".",
                "..",
                "../kube-system",
                "Kube",
                "a_b",
                "-a",
                &"a".repeat(64),
            ],
        );
        ok(
            KubeName,
            &["simsvc-mpt-web-5d8f7c9b6-x2x4z", "aks-gpu-1.node"],
        );
        bad(KubeName, &["x?y", "..", ".", "a..b", "a/b", "%2e%2e"]);
        ok(
            Labels,
            &[
                "team=ml",
                "team=ml,kubernetes.azure.com/scalesetpriority=spot",
                "k=",
            ],
        );
        bad(Labels, &["team", "=v", "k=v,", "k=-v", "a/b/c=v"]);
        ok(
            Taints,
            &["nvidia.com/gpu=present:NoSchedule", "dedicated:NoExecute"],
        );
        bad(
            Taints,
            &["k=v", "k=v:Never", ":NoSchedule", "k=v:NoSchedule,"],
        );
        ok(
            Repository,
            &["simsvc", "studio/go-runner", "a__b", "a.b/c-d"],
        );
        bad(
            Repository,
            &["", "Sim", "a//b", "/a", "a_._b", "..", "a/../b"],
        );
        ok(ImageTag, &["latest", "v1.2.0", "_x"]);
        bad(ImageTag, &["", ".x", "-x", "a:b", &"t".repeat(129)]);
        ok(TaggedImage, &["simsvc-mpt:1.2", "studio/runner:latest"]);
        ok(
            DaskCluster,
            &["dhub.0d1f3c6a4b5e", "0d1f3c6a4b5e4f2a9c3b1e2d4f5a6b7c"],
        );
        bad(
            DaskCluster,
            &["", "../x", "a/b", "a?b", "..", "a b", "%2e%2e"],
        );
        ok(AcrRun, &["ca1", "cb3k", "run_2-b"]);
        bad(AcrRun, &["", "..", "ca1/x", "%2e", &"r".repeat(51)]);
        ok(AcrToken, &["ci-simsvc", "token1", &"t".repeat(50)]);
        bad(
            AcrToken,
            &[
                "tok",
                "ci_simsvc",
                "../x",
                "a/b-c",
                "%2e%2e",
                &"t".repeat(51),
            ],
        );
        bad(
            TaggedImage,
            &[
                "simsvc", "simsvc:", ":1.0", "Simsvc:1", "a/../b:1", "a:b:.c",
            ],
        );
    }

    #[test]
    fn errors_quote_safely_and_state_the_rule() {
        let e = AgentPool.check("\u{1b}[2Jgpu").unwrap_err().to_string();
        assert!(e.contains("\\u{1b}"), "{e}");
        assert!(e.contains("1-12 lowercase"), "{e}");
        let long = "a".repeat(100_000);
        let e = AgentPool.check(&long).unwrap_err().to_string();
        assert!(e.len() < 400, "{e}");
        assert!(e.contains("100000 characters"), "{e}");
    }
}
