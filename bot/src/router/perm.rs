//! Who may run what: config rules map user ids and roles to permission patterns.

use deckhand_plugin_abi::proto::Caller;

use super::config::PermissionRule;

/// `*` matches any run of characters (dots included): `aks.*`, `*.status`, `*`.
pub fn pattern_matches(pattern: &str, permission: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == permission,
        Some((head, tail)) => {
            let Some(rest) = permission.strip_prefix(head) else {
                return false;
            };
            // Try every split point for the star; patterns are short.
            (0..=rest.len())
                .filter(|&i| rest.is_char_boundary(i))
                .any(|i| pattern_matches(tail, &rest[i..]))
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct PermissionPolicy {
    rules: Vec<PermissionRule>,
}

impl PermissionPolicy {
    pub fn new(rules: Vec<PermissionRule>) -> PermissionPolicy {
        PermissionPolicy { rules }
    }

    /// The patterns granted to a caller: the union of every rule naming the user or a role.
    pub fn grants<'a>(&'a self, caller: &'a Caller) -> impl Iterator<Item = &'a str> + 'a {
        self.rules
            .iter()
            .filter(|rule| {
                rule.users.contains(&caller.user_id)
                    || rule.roles.iter().any(|r| caller.roles.contains(r))
            })
            .flat_map(|rule| rule.allow.iter().map(String::as_str))
    }

    /// An empty permission marks a command anyone may run.
    pub fn allows(&self, caller: &Caller, permission: &str) -> bool {
        permission.is_empty() || self.grants(caller).any(|p| pattern_matches(p, permission))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(pattern_matches("*", "aks.scale"));
        assert!(pattern_matches("aks.*", "aks.pool.add"));
        assert!(!pattern_matches("aks.*", "acr.build"));
        assert!(pattern_matches("*.status", "vk.status"));
        assert!(!pattern_matches("*.status", "vk.status.extra"));
        assert!(pattern_matches("aks.scale", "aks.scale"));
        assert!(!pattern_matches("aks.scale", "aks.scales"));
        assert!(pattern_matches("a*c*e", "abcde"));
    }

    #[test]
    fn union_of_user_and_role_rules() {
        let policy = PermissionPolicy::new(vec![
            PermissionRule {
                users: vec!["u1".into()],
                roles: vec![],
                allow: vec!["aks.*".into()],
            },
            PermissionRule {
                users: vec![],
                roles: vec!["viewer".into()],
                allow: vec!["*.status".into()],
            },
        ]);
        let caller = Caller {
            user_id: "u1".into(),
            display_name: "U".into(),
            roles: vec!["viewer".into()],
        };
        assert!(policy.allows(&caller, "aks.scale"));
        assert!(policy.allows(&caller, "vk.status"));
        assert!(!policy.allows(&caller, "vk.enable"));
        let stranger = Caller {
            user_id: "u2".into(),
            ..Default::default()
        };
        assert!(!policy.allows(&stranger, "vk.status"));
        assert!(policy.allows(&stranger, ""));
    }
}
