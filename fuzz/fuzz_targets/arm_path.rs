//! Fuzzes `deckhand_cloud_names`: `ArmPath::parse`, the `ArmPath` builder, `NameRule::check`, and
//! that a resource-group name `NameRule::ResourceGroup` accepts builds an address that round-trips.
//! Run: `cd fuzz && cargo +nightly fuzz run arm_path` (see docs/fuzzing.md).
#![no_main]

use deckhand_cloud_names::{ArmPath, NameRule};
use libfuzzer_sys::fuzz_target;

const AKS: &str = "Microsoft.ContainerService";

/// Every `NameRule` variant. `is_path_segment` matches exhaustively, so adding a variant to the
/// library fails this build until it is listed here too.
const RULES: [NameRule; 22] = [
    NameRule::ResourceGroup,
    NameRule::AksCluster,
    NameRule::AgentPool,
    NameRule::VirtualNetwork,
    NameRule::Subnet,
    NameRule::ContainerRegistry,
    NameRule::ContainerGroup,
    NameRule::Location,
    NameRule::VmSize,
    NameRule::KubeLabel,
    NameRule::KubeName,
    NameRule::LabelKey,
    NameRule::LabelValue,
    NameRule::Labels,
    NameRule::Taints,
    NameRule::Repository,
    NameRule::ImageTag,
    NameRule::S3Bucket,
    NameRule::TaggedImage,
    NameRule::DaskCluster,
    NameRule::AcrToken,
    NameRule::AcrRun,
];

/// Whether a value the rule accepts must be a single path segment (no '/'). Label keys
/// (`prefix/name`), label lists, taints (`nvidia.com/gpu=...`) and image repositories
/// (`studio/runner`) contain '/' by definition.
fn is_path_segment(rule: NameRule) -> bool {
    match rule {
        NameRule::ResourceGroup
        | NameRule::AksCluster
        | NameRule::AgentPool
        | NameRule::VirtualNetwork
        | NameRule::Subnet
        | NameRule::ContainerRegistry
        | NameRule::ContainerGroup
        | NameRule::Location
        | NameRule::VmSize
        | NameRule::KubeLabel
        | NameRule::KubeName
        | NameRule::LabelValue
        | NameRule::ImageTag
        | NameRule::S3Bucket
        | NameRule::DaskCluster
        | NameRule::AcrToken
        | NameRule::AcrRun => true,
        NameRule::LabelKey
        | NameRule::Labels
        | NameRule::Taints
        | NameRule::Repository
        | NameRule::TaggedImage => false,
    }
}

fn check_parsed(input: &str, p: &ArmPath) {
    let s = p.to_string();
    assert!(
        !s.contains('?') && !s.contains('#'),
        "display of {input:?} has '?' or '#': {s:?}"
    );
    match ArmPath::parse(&s) {
        Ok(q) => assert_eq!(
            &q, p,
            "round trip of {input:?} via {s:?} changed the address"
        ),
        Err(e) => panic!("display {s:?} of parsed {input:?} does not parse back: {e}"),
    }
    for segment in p.segments(None) {
        assert!(
            !segment.is_empty() && segment != "." && segment != "..",
            "{input:?} parsed to a segment {segment:?}"
        );
        assert!(
            !segment.contains(['/', '?', '#', '%']),
            "{input:?} parsed to segment {segment:?} with a forbidden character"
        );
    }
}

fn build(a: &str, b: &str, c: &str) -> Result<ArmPath, deckhand_cloud_names::ArmPathError> {
    ArmPath::resource_group(a)?
        .provider(AKS)?
        .resource("managedClusters", b)?
        .resource("agentPools", c)
}

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };

    // (1) parse never panics; (2) what it accepts round-trips and is clean.
    if let Ok(p) = ArmPath::parse(input) {
        check_parsed(input, &p);
    }

    // (3) the builder: what it builds parses back to the same address.
    let mut parts = input.split('\n');
    let a = parts.next().unwrap_or("");
    let b = parts.next().unwrap_or("");
    let c = parts.next().unwrap_or("");
    if let Ok(built) = build(a, b, c) {
        let s = built.to_string();
        match ArmPath::parse(&s) {
            Ok(q) => assert_eq!(
                q, built,
                "built {a:?}/{b:?}/{c:?} -> {s:?} parses differently"
            ),
            Err(e) => panic!("built {a:?}/{b:?}/{c:?} -> {s:?} does not parse: {e}"),
        }
        check_parsed(&s, &built);
    }

    // (4) a resource-group name the rule accepts (what /rg and the host's typed
    // azure_mgmt_resources calls take) is one segment of an address that round-trips.
    if NameRule::ResourceGroup.check(input).is_ok() {
        match ArmPath::resource_group(input) {
            Ok(group) => check_parsed(input, &group),
            Err(e) => panic!("ResourceGroup accepts {input:?} but ArmPath refuses it: {e}"),
        }
    }

    // (5) every rule: no panic, and what it accepts is safe in a path.
    for rule in RULES {
        if rule.check(input).is_ok() {
            assert!(input != "." && input != "..", "{rule:?} accepts {input:?}");
            assert!(
                !input.contains(['?', '#', '%']) && !input.chars().any(char::is_control),
                "{rule:?} accepts {input:?} with '?', '#', '%' or a control character"
            );
            if is_path_segment(rule) {
                assert!(!input.contains('/'), "{rule:?} accepts {input:?} with '/'");
            }
        }
    }
});
