//! Users, agents and their credentials.
//!
//! Revoking an identity deletes its credentials in the same transaction
//! that stamps `revoked_at`, so a token stops working the moment the
//! revocation commits, and there applies what core's rule
//! ([`lifecycle::revoke_identity`]) says it does to the open requests.

use countersign_audit::AuditDraft;
use countersign_core::{lifecycle, PersonKey, Principal, PrincipalKind, PrincipalRef, Request, Timestamp};
use countersign_store::{Agent, NewAgent, NewUser, StoreError, User, UserProfile};
use rusqlite::{Connection, OptionalExtension, Row};

use crate::error::{corrupt, db, encode, insert};
use crate::requests;
use crate::writer::Tx;

pub(crate) fn create_user(tx: &mut Tx<'_>, user: NewUser, events: &[AuditDraft]) -> Result<User, StoreError> {
    let groups = serde_json::to_string(&user.groups).map_err(|e| encode("groups", e))?;
    let email_key = PersonKey::from_email(&user.email);
    tx.conn
        .prepare_cached("INSERT INTO users (name, email, email_key, groups, created_at) VALUES (?1, ?2, ?3, ?4, ?5)")
        .and_then(|mut s| {
            s.execute((&user.name, &user.email, email_key.as_str(), &groups, user.created_at.as_millis()))
        })
        .map_err(|e| insert(e, "user", &user.name))?;
    add_credential(tx.conn, &user.token_hash, PrincipalKind::User, &user.name, user.created_at)?;
    tx.append(events)?;
    Ok(User {
        name: user.name,
        email: user.email,
        groups: user.groups,
        created_at: user.created_at,
        revoked_at: None,
        display_name: None,
        last_login: None,
    })
}

/// Saves what the identity provider said at a login; audits only a change.
pub(crate) fn update_profile(
    tx: &mut Tx<'_>,
    name: &str,
    profile: &UserProfile,
    events: &[AuditDraft],
) -> Result<User, StoreError> {
    // Read inside the write transaction, so the comparison is with what
    // this update replaces.
    let Some(before) = user(tx.conn, name)? else {
        return Err(StoreError::NotFound { what: "user", name: name.to_owned() });
    };
    let groups = serde_json::to_string(&profile.groups).map_err(|e| encode("groups", e))?;
    let email_key = PersonKey::from_email(&profile.email);
    tx.conn
        .prepare_cached(
            "UPDATE users SET email = ?2, email_key = ?3, groups = ?4, display_name = ?5, last_login_at = ?6
              WHERE name = ?1",
        )
        .and_then(|mut s| {
            s.execute((
                name,
                &profile.email,
                email_key.as_str(),
                &groups,
                &profile.display_name,
                profile.login_at.as_millis(),
            ))
        })
        .map_err(db)?;
    if profile.changes(&before) {
        tx.append(events)?;
    }
    Ok(User {
        email: profile.email.clone(),
        groups: profile.groups.clone(),
        display_name: profile.display_name.clone(),
        last_login: Some(profile.login_at),
        ..before
    })
}

pub(crate) fn create_agent(tx: &mut Tx<'_>, agent: NewAgent, events: &[AuditDraft]) -> Result<Agent, StoreError> {
    let groups = serde_json::to_string(&agent.groups).map_err(|e| encode("groups", e))?;
    tx.conn
        .prepare_cached("INSERT INTO agents (name, owner, groups, created_at) VALUES (?1, ?2, ?3, ?4)")
        .and_then(|mut s| s.execute((&agent.name, &agent.owner, &groups, agent.created_at.as_millis())))
        .map_err(|e| insert(e, "agent", &agent.name))?;
    add_credential(tx.conn, &agent.token_hash, PrincipalKind::Agent, &agent.name, agent.created_at)?;
    tx.append(events)?;
    Ok(Agent {
        name: agent.name,
        owner: agent.owner,
        groups: agent.groups,
        created_at: agent.created_at,
        revoked_at: None,
    })
}

fn add_credential(
    conn: &Connection,
    token_hash: &str,
    kind: PrincipalKind,
    name: &str,
    created_at: Timestamp,
) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO credentials (token_hash, principal_kind, principal_name, created_at) VALUES (?1, ?2, ?3, ?4)",
    )
    .and_then(|mut s| s.execute((token_hash, kind.as_str(), name, created_at.as_millis())))
    // The hash is not secret, but it identifies nothing a person would
    // recognise; name the identity that wanted it instead.
    .map_err(|e| insert(e, "token for", &format!("{}:{name}", kind.as_str())))?;
    Ok(())
}

/// Revokes an identity, and persists what that does to the open requests
/// as [`lifecycle::revoke_identity`] decides it. Returns the requests it
/// revoked.
pub(crate) fn revoke(
    tx: &mut Tx<'_>,
    kind: PrincipalKind,
    name: &str,
    now: Timestamp,
    events: &[AuditDraft],
) -> Result<Vec<Request>, StoreError> {
    let (sql, what) = match kind {
        PrincipalKind::User => ("UPDATE users SET revoked_at = COALESCE(revoked_at, ?2) WHERE name = ?1", "user"),
        PrincipalKind::Agent => ("UPDATE agents SET revoked_at = COALESCE(revoked_at, ?2) WHERE name = ?1", "agent"),
    };
    let changed = tx.conn.prepare_cached(sql).and_then(|mut s| s.execute((name, now.as_millis()))).map_err(db)?;
    if changed == 0 {
        return Err(StoreError::NotFound { what, name: name.to_owned() });
    }
    tx.conn
        .prepare_cached("DELETE FROM credentials WHERE principal_kind = ?1 AND principal_name = ?2")
        .and_then(|mut s| s.execute((kind.as_str(), name)))
        .map_err(db)?;
    tx.append(events)?;

    // Read in this transaction: a release after it cannot count the
    // identity's votes.
    let gone = PrincipalRef { kind, name: name.to_owned() };
    let cascade = lifecycle::revoke_identity(&gone, &requests::open(tx.conn)?, now);
    for (id, refusal) in &cascade.skipped {
        tracing::warn!(%id, %refusal, "skipped a request whose index and body disagree");
    }
    let revoked = cascade.revoked();
    for moved in cascade.moves {
        requests::save(tx.conn, &moved.request)?;
        tx.append(&moved.events.into_iter().map(AuditDraft::from).collect::<Vec<_>>())?;
    }
    Ok(revoked)
}

pub(crate) fn user(conn: &Connection, name: &str) -> Result<Option<User>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, email, groups, created_at, revoked_at, display_name, last_login_at FROM users WHERE name = ?1")
        .map_err(db)?;
    stmt.query_row([name], decode_user).optional().map_err(db)?.transpose()
}

pub(crate) fn users_with_email(conn: &Connection, email: &str) -> Result<Vec<User>, StoreError> {
    let key = PersonKey::from_email(email);
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, email, groups, created_at, revoked_at, display_name, last_login_at FROM users WHERE email_key = ?1 ORDER BY name",
        )
        .map_err(db)?;
    let rows = stmt.query_map([key.as_str()], decode_user).map_err(db)?;
    rows.map(|r| r.map_err(db)?).collect()
}

pub(crate) fn list_users(conn: &Connection) -> Result<Vec<User>, StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT name, email, groups, created_at, revoked_at, display_name, last_login_at FROM users ORDER BY name",
        )
        .map_err(db)?;
    let rows = stmt.query_map([], decode_user).map_err(db)?;
    rows.map(|r| r.map_err(db)?).collect()
}

pub(crate) fn agent(conn: &Connection, name: &str) -> Result<Option<Agent>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, owner, groups, created_at, revoked_at FROM agents WHERE name = ?1")
        .map_err(db)?;
    stmt.query_row([name], decode_agent).optional().map_err(db)?.transpose()
}

pub(crate) fn list_agents(conn: &Connection) -> Result<Vec<Agent>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT name, owner, groups, created_at, revoked_at FROM agents ORDER BY name")
        .map_err(db)?;
    let rows = stmt.query_map([], decode_agent).map_err(db)?;
    rows.map(|r| r.map_err(db)?).collect()
}

/// The live identity holding this credential.
/// The lookup every authenticated call makes.
pub(crate) const PRINCIPAL_BY_TOKEN_HASH: &str = "SELECT 'user', u.name, u.email, NULL, u.groups
       FROM credentials c JOIN users u ON u.name = c.principal_name
      WHERE c.token_hash = ?1 AND c.principal_kind = 'user' AND u.revoked_at IS NULL
     UNION ALL
     SELECT 'agent', a.name, NULL, a.owner, a.groups
       FROM credentials c JOIN agents a ON a.name = c.principal_name
      WHERE c.token_hash = ?1 AND c.principal_kind = 'agent' AND a.revoked_at IS NULL";

pub(crate) fn principal_by_token_hash(conn: &Connection, token_hash: &str) -> Result<Option<Principal>, StoreError> {
    // Revocation deletes credentials, but the revoked_at checks keep a
    // token dead even if a row were ever left behind.
    let mut stmt = conn.prepare_cached(PRINCIPAL_BY_TOKEN_HASH).map_err(db)?;
    stmt.query_row([token_hash], decode_principal).optional().map_err(db)?.transpose()
}

fn decode_groups(text: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(text).map_err(|e| corrupt("identity groups", e))
}

fn decode_user(row: &Row<'_>) -> rusqlite::Result<Result<User, StoreError>> {
    let name: String = row.get(0)?;
    let email: String = row.get(1)?;
    let groups: String = row.get(2)?;
    let created_at: i64 = row.get(3)?;
    let revoked_at: Option<i64> = row.get(4)?;
    let display_name: Option<String> = row.get(5)?;
    let last_login: Option<i64> = row.get(6)?;
    Ok(decode_groups(&groups).map(|groups| User {
        name,
        email,
        groups,
        created_at: Timestamp::from_millis(created_at),
        revoked_at: revoked_at.map(Timestamp::from_millis),
        display_name,
        last_login: last_login.map(Timestamp::from_millis),
    }))
}

fn decode_agent(row: &Row<'_>) -> rusqlite::Result<Result<Agent, StoreError>> {
    let name: String = row.get(0)?;
    let owner: Option<String> = row.get(1)?;
    let groups: String = row.get(2)?;
    let created_at: i64 = row.get(3)?;
    let revoked_at: Option<i64> = row.get(4)?;
    Ok(decode_groups(&groups).map(|groups| Agent {
        name,
        owner,
        groups,
        created_at: Timestamp::from_millis(created_at),
        revoked_at: revoked_at.map(Timestamp::from_millis),
    }))
}

fn decode_principal(row: &Row<'_>) -> rusqlite::Result<Result<Principal, StoreError>> {
    let kind: String = row.get(0)?;
    let name: String = row.get(1)?;
    let email: Option<String> = row.get(2)?;
    let owner: Option<String> = row.get(3)?;
    let groups: String = row.get(4)?;
    let kind = match kind.as_str() {
        "user" => PrincipalKind::User,
        "agent" => PrincipalKind::Agent,
        other => return Ok(Err(StoreError::Corrupt(format!("unknown principal kind `{other}`")))),
    };
    Ok(decode_groups(&groups).map(|groups| Principal { kind, name, email, owner, groups }))
}
