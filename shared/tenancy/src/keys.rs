//! Where a tenant's records live in the `Table`: every key is scoped by organisation, and
//! `ORG#<org>` is the partition of everything an organisation owns. Written once here, so no feature
//! spells a partition of its own.

use imagemcp_core::ids::{ConversationId, ImageId, OrgId};
use imagemcp_core::table::Key;

/// The partition of everything `org` owns.
pub fn org_pk(org: &OrgId) -> String {
    format!("ORG#{org}")
}

/// A stored image.
pub fn image_key(org: &OrgId, id: &ImageId) -> Key {
    Key::new(org_pk(org), format!("IMG#{id}"))
}

/// What remains of a deleted image, so a late caller hears "deleted" rather than "not found".
pub fn tombstone_key(org: &OrgId, id: &ImageId) -> Key {
    Key::new(org_pk(org), format!("DELETED#{id}"))
}

/// A conversation (a chain of refinements).
pub fn conversation_key(org: &OrgId, id: &ConversationId) -> Key {
    Key::new(org_pk(org), format!("CONV#{id}"))
}

/// One usage counter of a month (`YYYY-MM`).
pub fn usage_key(org: &OrgId, month: &str, counter: &str) -> Key {
    Key::new(org_pk(org), format!("USAGE#{month}#{counter}"))
}
