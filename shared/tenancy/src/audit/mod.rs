//! The tamper-evident audit log: per organisation, an append-only hash chain of what people did
//! (generations, edits, deletions, role changes, member removals, key changes, logins, exports,
//! deletion requests).
//!
//! Layout: entries at `ORG#<org>` / `AUDIT#<seq, 20 digits>`, the chain head (last sequence number
//! and hash) at `ORG#<org>` / `AUDITHEAD`. Login attempts for an email that has no account go to
//! the chain `SYSTEM#logins`, keyed by the email's lookup hash.
//!
//! **Appending.** The next sequence number is allocated by a conditional write of the head (`seq`
//! must still be what was read), in the same `transact` as the new entry (`NotExists`) *and the
//! domain write it records*. So concurrent appends never fork the chain (one wins, the other
//! re-reads the head and retries), and an action and its entry are written together or not at all.
//! Exceptions, where the entry is its own transaction: login attempts (nothing else is written),
//! and the erasure of a user (too many writes for one transaction; its entry is appended first).
//!
//! **Personal data.** Entries outlive the people in them, so they never hold a person in clear: the
//! actor is a pseudonym (HMAC of the user id under the org's data key) and the user id itself is
//! sealed with the *user's* data key. Erasing a user destroys that key: their entries stay,
//! unreadable as to who, and the chain still verifies because no stored byte changes.

pub mod chain;

use imagemcp_core::ids::{OrgId, UserId};
use imagemcp_core::table::{Condition, Item, Key, TransactOp};
use imagemcp_core::{Error, Result};
use serde_json::{Map, Value, json};

use crate::Caller;
use crate::Ports;
use crate::crypto::{Crypto, field_aad, user_owner};
use chain::{Entry, GENESIS, hash_of};

/// How many times an append retries after losing the race for the next sequence number.
const MAX_APPEND_ATTEMPTS: usize = 32;

/// An audit chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Chain {
    Org(OrgId),
    /// Failed logins for emails that have no account.
    Logins,
}

impl Chain {
    pub fn pk(&self) -> String {
        match self {
            Chain::Org(org) => format!("ORG#{org}"),
            Chain::Logins => "SYSTEM#logins".to_owned(),
        }
    }
}

pub fn entry_key(chain_pk: &str, seq: u64) -> Key {
    Key::new(chain_pk, format!("AUDIT#{seq:020}"))
}

pub fn head_key(chain_pk: &str) -> Key {
    Key::new(chain_pk, "AUDITHEAD")
}

/// Who acted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// A login attempt for an address without an account: its lookup hash.
    EmailHash(String),
    System,
}

/// Something to record. Build with [`Event::new`] or [`Event::by`].
#[derive(Clone, Debug)]
pub struct Event {
    pub chain: Chain,
    pub action: &'static str,
    pub actor: Actor,
    pub success: bool,
    pub target: Option<String>,
    pub target_user: Option<UserId>,
    /// Non-personal detail only: never an email, name, prompt or secret.
    pub details: Map<String, Value>,
}

impl Event {
    pub fn new(chain: Chain, action: &'static str, actor: Actor) -> Self {
        Self {
            chain,
            action,
            actor,
            success: true,
            target: None,
            target_user: None,
            details: Map::new(),
        }
    }

    /// An action of a caller in its organisation.
    pub fn by(caller: &Caller, action: &'static str) -> Self {
        Self::new(
            Chain::Org(caller.org.clone()),
            action,
            Actor::User(caller.user.clone()),
        )
        .detail("credential", json!(caller.credential))
    }

    pub fn target(mut self, target: impl std::fmt::Display) -> Self {
        self.target = Some(target.to_string());
        self
    }

    pub fn target_user(mut self, user: &UserId) -> Self {
        self.target_user = Some(user.clone());
        self
    }

    pub fn detail(mut self, key: &str, value: Value) -> Self {
        self.details.insert(key.to_owned(), value);
        self
    }

    pub fn failed(mut self) -> Self {
        self.success = false;
        self
    }
}

/// The pseudonym of a user in a chain.
pub async fn subject(ports: &Ports, chain_pk: &str, user: &UserId) -> Result<String> {
    Crypto::new(ports).pseudonym(chain_pk, user.as_str()).await
}

async fn build(ports: &Ports, event: &Event, seq: u64, prev: &str) -> Result<Item> {
    let pk = event.chain.pk();
    let key = entry_key(&pk, seq);
    let crypto = Crypto::new(ports);
    let (actor, actor_sealed) = match &event.actor {
        Actor::User(user) => (
            subject(ports, &pk, user).await?,
            Some(
                crypto
                    .seal(
                        &user_owner(user),
                        &field_aad(&key, "actor_sealed"),
                        user.as_str(),
                    )
                    .await?,
            ),
        ),
        Actor::EmailHash(hash) => (format!("email_{hash}"), None),
        Actor::System => ("system".to_owned(), None),
    };
    let (target_user, target_user_sealed) = match &event.target_user {
        Some(user) => (
            Some(subject(ports, &pk, user).await?),
            Some(
                crypto
                    .seal(
                        &user_owner(user),
                        &field_aad(&key, "target_user_sealed"),
                        user.as_str(),
                    )
                    .await?,
            ),
        ),
        None => (None, None),
    };
    let entry = Entry {
        seq,
        at_ms: ports.clock.now_ms(),
        action: event.action.to_owned(),
        outcome: if event.success { "success" } else { "failure" }.to_owned(),
        actor,
        actor_sealed,
        target: event.target.clone(),
        target_user,
        target_user_sealed,
        details: event.details.clone(),
        prev: prev.to_owned(),
        hash: String::new(),
    };
    let mut item = crate::items::to_item(key, &entry)?;
    let hash = hash_of(&item.attrs);
    item.attrs.insert("hash".into(), json!(hash));
    Ok(item)
}

/// The chain's head: the last sequence number and hash (`0` and the genesis hash when empty).
pub async fn head(ports: &Ports, chain_pk: &str) -> Result<(u64, String)> {
    Ok(match ports.table.get(&head_key(chain_pk)).await? {
        Some(item) => (
            item.attrs.get("seq").and_then(Value::as_u64).unwrap_or(0),
            item.str("hash").unwrap_or(GENESIS).to_owned(),
        ),
        None => (0, GENESIS.to_owned()),
    })
}

/// Writes `domain` and appends `event` to its chain in one transaction: both or neither. A
/// `Conflict` of the domain's own conditions is returned as it came; losing the race for the next
/// sequence number is retried.
pub async fn commit(ports: &Ports, event: &Event, domain: Vec<TransactOp>) -> Result<Entry> {
    let pk = event.chain.pk();
    for _ in 0..MAX_APPEND_ATTEMPTS {
        let (seq, prev) = head(ports, &pk).await?;
        let item = build(ports, event, seq + 1, &prev).await?;
        let mut head_item = Item::new(head_key(&pk), Map::new());
        head_item.attrs.insert("seq".into(), json!(seq + 1));
        head_item
            .attrs
            .insert("hash".into(), item.attrs["hash"].clone());
        let head_cond = if seq == 0 {
            Condition::NotExists
        } else {
            Condition::AttrEquals("seq".into(), json!(seq))
        };
        let mut ops = domain.clone();
        ops.push(TransactOp::Put(head_item, head_cond));
        ops.push(TransactOp::Put(item.clone(), Condition::NotExists));
        match ports.table.transact(ops).await {
            Ok(()) => return crate::items::from_item(item),
            Err(Error::Conflict(reason)) => {
                if head(ports, &pk).await?.0 == seq {
                    // The head did not move: the domain's condition failed.
                    return Err(Error::Conflict(reason));
                }
            }
            Err(e) => return Err(e),
        }
    }
    Err(Error::Unavailable(
        "the audit log is too busy to record this action; retry".into(),
    ))
}

/// Appends an event on its own (login attempts and other actions with no domain write).
pub async fn record(ports: &Ports, event: Event) -> Result<Entry> {
    commit(ports, &event, Vec::new()).await
}

/// Writes `domain` with `event` when there is one, alone otherwise.
pub async fn commit_opt(
    ports: &Ports,
    event: Option<&Event>,
    domain: Vec<TransactOp>,
) -> Result<()> {
    match event {
        Some(event) => commit(ports, event, domain).await.map(|_| ()),
        None => ports.table.transact(domain).await,
    }
}
