//! Who may do what, as data: the roles of a team member, the actions of the product, the scopes a
//! credential (API key or OAuth token) can carry, and the one function every tool and route asks.
//!
//! A call is allowed when the caller's **role** allows the action *and* the credential's **scopes**
//! cover it: a role says what a person may do, a scope what a particular key or token was given.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

use crate::Error;

/// A member's role in a team, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    Creator,
    Reviewer,
    Viewer,
}

/// Everything a caller can ask the product to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// See images, conversations and their files.
    ViewImages,
    /// Generate new images.
    Generate,
    /// Edit images (new images from existing ones).
    Edit,
    /// Delete images one created.
    DeleteOwn,
    /// Delete anyone's images.
    DeleteAny,
    /// Create and change brand kits.
    ManageBrandKits,
    /// Review and approve or reject work.
    Review,
    /// Invite and remove members, change roles, manage teams.
    ManageMembers,
    /// Create, rotate and revoke one's own API keys.
    ManageOwnKeys,
    /// Subscriptions, payment, plans.
    ManageBilling,
    /// Read the audit log.
    ViewAuditLog,
    /// Export the organisation's data.
    ExportData,
    /// See usage and costs.
    ViewUsage,
}

impl Action {
    pub const ALL: &'static [Action] = &[
        Action::ViewImages,
        Action::Generate,
        Action::Edit,
        Action::DeleteOwn,
        Action::DeleteAny,
        Action::ManageBrandKits,
        Action::Review,
        Action::ManageMembers,
        Action::ManageOwnKeys,
        Action::ManageBilling,
        Action::ViewAuditLog,
        Action::ExportData,
        Action::ViewUsage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Action::ViewImages => "view_images",
            Action::Generate => "generate",
            Action::Edit => "edit",
            Action::DeleteOwn => "delete_own",
            Action::DeleteAny => "delete_any",
            Action::ManageBrandKits => "manage_brand_kits",
            Action::Review => "review",
            Action::ManageMembers => "manage_members",
            Action::ManageOwnKeys => "manage_own_keys",
            Action::ManageBilling => "manage_billing",
            Action::ViewAuditLog => "view_audit_log",
            Action::ExportData => "export_data",
            Action::ViewUsage => "view_usage",
        }
    }

    /// The scope a credential needs for this action. `admin` is for administering the
    /// organisation; reviewing work is a member's write, so a reviewer's credentials need no more
    /// than `images:write`.
    pub fn scope(self) -> Scope {
        match self {
            Action::ViewImages | Action::ViewUsage => Scope::ImagesRead,
            Action::Generate
            | Action::Edit
            | Action::DeleteOwn
            | Action::Review
            | Action::ManageOwnKeys => Scope::ImagesWrite,
            _ => Scope::Admin,
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The matrix: for each role, the actions it allows. The single source of truth; `allows` reads it,
/// the docs print it and a test walks all of it against the running server.
pub const MATRIX: &[(Role, &[Action])] = &[
    (Role::Admin, Action::ALL),
    (
        Role::Creator,
        &[
            Action::ViewImages,
            Action::Generate,
            Action::Edit,
            Action::DeleteOwn,
            Action::ManageOwnKeys,
            Action::ViewUsage,
        ],
    ),
    (
        Role::Reviewer,
        &[
            Action::ViewImages,
            Action::Review,
            Action::ManageOwnKeys,
            Action::ViewUsage,
        ],
    ),
    (Role::Viewer, &[Action::ViewImages]),
];

impl Role {
    pub const ALL: &'static [Role] = &[Role::Admin, Role::Creator, Role::Reviewer, Role::Viewer];

    pub fn allows(self, action: Action) -> bool {
        MATRIX
            .iter()
            .any(|(role, actions)| *role == self && actions.contains(&action))
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Creator => "creator",
            Role::Reviewer => "reviewer",
            Role::Viewer => "viewer",
        }
    }

    /// The least powerful role that allows `action`, for error messages.
    pub fn least_for(action: Action) -> Option<Role> {
        Role::ALL.iter().rev().copied().find(|r| r.allows(action))
    }

    /// The scopes this role can use: those its allowed actions need (and the ones they imply).
    /// A credential's scopes are always capped by them, and a credential made without naming
    /// scopes carries exactly these.
    pub fn scopes(self) -> Vec<Scope> {
        let top = Action::ALL
            .iter()
            .filter(|a| self.allows(**a))
            .map(|a| a.scope())
            .max()
            .unwrap_or(Scope::ImagesRead);
        top.and_below()
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "admin" => Ok(Role::Admin),
            "creator" => Ok(Role::Creator),
            "reviewer" => Ok(Role::Reviewer),
            "viewer" => Ok(Role::Viewer),
            other => Err(Error::invalid(
                "role",
                format!("`{other}` is not one of: admin, creator, reviewer, viewer"),
            )),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a credential was granted. `admin` implies the other two; `images:write` implies `images:read`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Scope {
    #[serde(rename = "images:read")]
    ImagesRead,
    #[serde(rename = "images:write")]
    ImagesWrite,
    #[serde(rename = "admin")]
    Admin,
}

impl Scope {
    pub const ALL: &'static [Scope] = &[Scope::ImagesRead, Scope::ImagesWrite, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ImagesRead => "images:read",
            Scope::ImagesWrite => "images:write",
            Scope::Admin => "admin",
        }
    }

    /// Whether holding `self` grants `needed`.
    pub fn covers(self, needed: Scope) -> bool {
        self >= needed
    }

    /// `self` and every scope it implies, in order.
    pub fn and_below(self) -> Vec<Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(|s| self.covers(*s))
            .collect()
    }

    /// Whether a list of scopes grants `needed`.
    pub fn granted(list: &[Scope], needed: Scope) -> bool {
        list.iter().any(|s| s.covers(needed))
    }

    /// The scopes both lists grant, spelled out in order (`[admin]` ∩ `[images:write]` is
    /// `[images:read, images:write]`).
    pub fn intersect(a: &[Scope], b: &[Scope]) -> Vec<Scope> {
        Scope::ALL
            .iter()
            .copied()
            .filter(|s| Scope::granted(a, *s) && Scope::granted(b, *s))
            .collect()
    }

    /// Parses a space-separated scope list (OAuth's `scope` format); the error names `field`.
    pub fn parse_list(field: &str, s: &str) -> Result<Vec<Scope>, Error> {
        let mut out = Vec::new();
        for word in s.split_whitespace() {
            let scope = Scope::ALL
                .iter()
                .copied()
                .find(|sc| sc.as_str() == word)
                .ok_or_else(|| {
                    Error::invalid(
                        field,
                        format!("unknown scope `{word}` (images:read, images:write, admin)"),
                    )
                })?;
            if !out.contains(&scope) {
                out.push(scope);
            }
        }
        out.sort();
        Ok(out)
    }

    /// The space-separated form of a list.
    pub fn join(scopes: &[Scope]) -> String {
        scopes
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The one check: may a caller with `role`, holding `scopes`, do `action`? The error says which
/// role or scope would allow it, so a person (or a client doing step-up) knows what to ask for.
pub fn authorize(role: Role, scopes: &[Scope], action: Action) -> Result<(), Error> {
    if !role.allows(action) {
        let needed = Role::least_for(action).map_or("admin", Role::as_str);
        return Err(Error::Forbidden(format!(
            "your role ({role}) does not allow {action}; it needs {needed} or higher"
        )));
    }
    let scope = action.scope();
    if !Scope::granted(scopes, scope) {
        return Err(Error::Forbidden(format!(
            "this credential lacks the `{scope}` scope needed for {action}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admins_may_do_everything_and_viewers_only_look() {
        for action in Action::ALL {
            assert!(Role::Admin.allows(*action), "{action}");
            if Role::Viewer.allows(*action) {
                assert!(
                    Role::ALL.iter().all(|r| r.allows(*action)),
                    "every role may do what a viewer may: {action}"
                );
            }
        }
        assert!(!Role::Creator.allows(Action::DeleteAny));
        assert!(!Role::Creator.allows(Action::Review));
        assert!(Role::Reviewer.allows(Action::Review) && !Role::Reviewer.allows(Action::Generate));
        assert!(!Role::Viewer.allows(Action::Generate));
        assert_eq!(Role::least_for(Action::Review), Some(Role::Reviewer));
    }

    #[test]
    fn scopes_and_roles_both_decide() {
        let all = [Scope::Admin];
        assert!(authorize(Role::Creator, &all, Action::Generate).is_ok());
        let err = authorize(Role::Viewer, &all, Action::Generate)
            .unwrap_err()
            .to_string();
        assert!(err.contains("creator"), "{err}");
        let err = authorize(Role::Admin, &[Scope::ImagesRead], Action::Generate)
            .unwrap_err()
            .to_string();
        assert!(err.contains("images:write"), "{err}");
        assert!(authorize(Role::Admin, &[Scope::ImagesWrite], Action::ViewImages).is_ok());
        assert!(authorize(Role::Admin, &[Scope::ImagesWrite], Action::ViewAuditLog).is_err());
    }

    #[test]
    fn each_role_can_use_the_scopes_of_its_actions_and_no_more() {
        use Scope::*;
        assert_eq!(Role::Admin.scopes(), [ImagesRead, ImagesWrite, Admin]);
        assert_eq!(Role::Creator.scopes(), [ImagesRead, ImagesWrite]);
        assert_eq!(Role::Reviewer.scopes(), [ImagesRead, ImagesWrite]);
        assert_eq!(Role::Viewer.scopes(), [ImagesRead]);
        for role in Role::ALL {
            for action in Action::ALL {
                if role.allows(*action) {
                    assert!(
                        authorize(*role, &role.scopes(), *action).is_ok(),
                        "{role} × {action}: its own scopes must suffice"
                    );
                }
            }
        }
    }

    #[test]
    fn scope_lists_intersect_as_a_chain() {
        use Scope::*;
        assert_eq!(
            Scope::intersect(&[Admin], &[ImagesWrite]),
            [ImagesRead, ImagesWrite]
        );
        assert_eq!(Scope::intersect(&[ImagesRead], &[Admin]), [ImagesRead]);
        assert_eq!(
            Scope::intersect(&[ImagesWrite], &Role::Admin.scopes()),
            [ImagesRead, ImagesWrite]
        );
        assert_eq!(Scope::intersect(&[], &[Admin]), []);
    }

    #[test]
    fn scope_lists_parse() {
        assert_eq!(
            Scope::parse_list("scope", "images:write  images:read images:read").unwrap(),
            vec![Scope::ImagesRead, Scope::ImagesWrite]
        );
        assert!(Scope::parse_list("scope", "images:delete").is_err());
        assert_eq!(
            Scope::join(&[Scope::ImagesRead, Scope::Admin]),
            "images:read admin"
        );
    }
}

#[cfg(test)]
mod docs_tests {
    use super::*;

    /// `docs/access.md` shows the matrix; it must say what the code does.
    #[test]
    fn the_documented_matrix_is_the_matrix() {
        let docs =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/access.md"))
                .expect("docs/access.md");
        for action in Action::ALL {
            let cells: String = Role::ALL
                .iter()
                .map(|r| if r.allows(*action) { " ✓ |" } else { " |" })
                .collect();
            let row = format!("| {} | {} |{cells}", action, action.scope());
            assert!(docs.contains(&row), "docs/access.md lacks the row {row}");
        }
    }
}
