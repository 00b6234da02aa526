//! Who is calling: the user, the organisation and team a credential acts in, its role and scopes.
//! Resolved from credentials at the edge and passed to every service, which authorizes with it.

use imagemcp_core::Result;
use imagemcp_core::ids::{OrgId, TeamId, UserId};
use imagemcp_core::rbac::{self, Action, Role, Scope};
use sha2::{Digest, Sha256};

/// The organisation of the local install's administrator.
pub const DEFAULT_ORG: &str = "org_default";

/// Who is calling: resolved from credentials at the edge, passed to every service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub user: UserId,
    pub org: OrgId,
    /// The team the caller acts in (a team-bound key's team, or the org's default team).
    pub team: TeamId,
    pub role: Role,
    pub scopes: Vec<Scope>,
    /// The credential's id (an API key id or a token's id): sessions are bound to it.
    pub credential: String,
}

impl Caller {
    /// A stable, non-reversible end-user id for the model provider's abuse detection.
    pub fn safety_identifier(&self) -> String {
        hex::encode(&Sha256::digest(format!("{}:{}", self.org, self.user))[..16])
    }

    /// Whether the caller may do `action`; the error says which role or scope is missing.
    pub fn authorize(&self, action: Action) -> Result<()> {
        rbac::authorize(self.role, &self.scopes, action)
    }

    /// Whether the caller may do `action` (for filtering lists).
    pub fn may(&self, action: Action) -> bool {
        self.authorize(action).is_ok()
    }
}
