//! Users, agents and their credentials.
//!
//! Inside the writer every check-then-write is race-free: the transaction
//! holds the chain-head lock, which every writer on every replica takes
//! first. Checking before inserting (instead of catching a unique
//! violation) keeps a refused create from aborting the whole batch.

use countersign_audit::AuditDraft;
use countersign_core::{lifecycle, PersonKey, Principal, PrincipalKind, PrincipalRef, Request, Timestamp};
use countersign_store::{Agent, NewAgent, NewUser, StoreError, User, UserProfile};
use deadpool_postgres::Client;

use crate::error::{col, db};
use crate::requests::{self, Row as RequestRow};
use crate::writer::{Fatal, Tx};

/// The user columns every read decodes, as a macro so the writer's
/// `&'static` statements can be built from it with `concat!`.
macro_rules! user_columns {
    () => {
        "SELECT name, email, groups, created_at, revoked_at, display_name, last_login_at FROM users"
    };
}

/// Why a create was refused, checked before anything is written.
async fn taken(
    tx: &mut Tx<'_>,
    table: &'static str,
    name: &str,
    token_hash: &str,
) -> Result<Option<StoreError>, Fatal> {
    let sql = match table {
        "users" => {
            "SELECT EXISTS (SELECT 1 FROM users WHERE name = $1), EXISTS (SELECT 1 FROM credentials WHERE token_hash = $2)"
        }
        _ => {
            "SELECT EXISTS (SELECT 1 FROM agents WHERE name = $1), EXISTS (SELECT 1 FROM credentials WHERE token_hash = $2)"
        }
    };
    let row = tx.query_one(sql, &[&name, &token_hash]).await?;
    let (what, kind) = if table == "users" { ("user", "user") } else { ("agent", "agent") };
    if col::<bool>(&row, 0).map_err(Fatal::Store)? {
        return Ok(Some(StoreError::AlreadyExists { what, name: name.to_owned() }));
    }
    if col::<bool>(&row, 1).map_err(Fatal::Store)? {
        // The hash is not secret, but it identifies nothing a person would
        // recognise; name the identity that wanted it instead.
        return Ok(Some(StoreError::AlreadyExists { what: "token for", name: format!("{kind}:{name}") }));
    }
    Ok(None)
}

async fn add_credential(
    tx: &mut Tx<'_>,
    token_hash: &str,
    kind: PrincipalKind,
    name: &str,
    created_at: Timestamp,
) -> Result<(), Fatal> {
    tx.execute(
        "INSERT INTO credentials (token_hash, principal_kind, principal_name, created_at) VALUES ($1, $2, $3, $4)",
        &[&token_hash, &kind.as_str(), &name, &created_at.as_millis()],
    )
    .await?;
    Ok(())
}

pub(crate) async fn create_user(
    tx: &mut Tx<'_>,
    user: NewUser,
    events: &[AuditDraft],
) -> Result<Result<User, StoreError>, Fatal> {
    if let Some(refused) = taken(tx, "users", &user.name, &user.token_hash).await? {
        return Ok(Err(refused));
    }
    let email_key = PersonKey::from_email(&user.email);
    tx.execute(
        "INSERT INTO users (name, email, email_key, groups, created_at) VALUES ($1, $2, $3, $4, $5)",
        &[&user.name, &user.email, &email_key.as_str(), &user.groups, &user.created_at.as_millis()],
    )
    .await?;
    add_credential(tx, &user.token_hash, PrincipalKind::User, &user.name, user.created_at).await?;
    tx.append(events).map_err(Fatal::Store)?;
    Ok(Ok(User {
        name: user.name,
        email: user.email,
        groups: user.groups,
        created_at: user.created_at,
        revoked_at: None,
        display_name: None,
        last_login: None,
    }))
}

/// Saves what the identity provider said at a login; audits only a change.
pub(crate) async fn update_profile(
    tx: &mut Tx<'_>,
    name: &str,
    profile: &UserProfile,
    events: &[AuditDraft],
) -> Result<Result<User, StoreError>, Fatal> {
    // Read under the chain-head lock the writer holds, so the comparison
    // is with what this update replaces, whichever replica wrote last.
    let rows = tx.query(concat!(user_columns!(), " WHERE name = $1"), &[&name]).await?;
    let Some(before) = rows.first().map(decode_user).transpose().map_err(Fatal::Store)? else {
        return Ok(Err(StoreError::NotFound { what: "user", name: name.to_owned() }));
    };
    let email_key = PersonKey::from_email(&profile.email);
    tx.execute(
        "UPDATE users SET email = $2, email_key = $3, groups = $4, display_name = $5, last_login_at = $6 WHERE name = $1",
        &[&name, &profile.email, &email_key.as_str(), &profile.groups, &profile.display_name, &profile.login_at.as_millis()],
    )
    .await?;
    tx.mark_dirty();
    if profile.changes(&before) {
        tx.append(events).map_err(Fatal::Store)?;
    }
    Ok(Ok(User {
        email: profile.email.clone(),
        groups: profile.groups.clone(),
        display_name: profile.display_name.clone(),
        last_login: Some(profile.login_at),
        ..before
    }))
}

pub(crate) async fn create_agent(
    tx: &mut Tx<'_>,
    agent: NewAgent,
    events: &[AuditDraft],
) -> Result<Result<Agent, StoreError>, Fatal> {
    if let Some(refused) = taken(tx, "agents", &agent.name, &agent.token_hash).await? {
        return Ok(Err(refused));
    }
    tx.execute(
        "INSERT INTO agents (name, owner, groups, created_at) VALUES ($1, $2, $3, $4)",
        &[&agent.name, &agent.owner, &agent.groups, &agent.created_at.as_millis()],
    )
    .await?;
    add_credential(tx, &agent.token_hash, PrincipalKind::Agent, &agent.name, agent.created_at).await?;
    tx.append(events).map_err(Fatal::Store)?;
    Ok(Ok(Agent {
        name: agent.name,
        owner: agent.owner,
        groups: agent.groups,
        created_at: agent.created_at,
        revoked_at: None,
    }))
}

/// Revokes an identity, and persists what that does to the open requests
/// as [`lifecycle::revoke_identity`] decides it. Returns the requests it
/// revoked.
pub(crate) async fn revoke(
    tx: &mut Tx<'_>,
    kind: PrincipalKind,
    name: &str,
    now: Timestamp,
    events: &[AuditDraft],
) -> Result<Result<Vec<Request>, StoreError>, Fatal> {
    let (sql, what) = match kind {
        PrincipalKind::User => ("UPDATE users SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1", "user"),
        PrincipalKind::Agent => ("UPDATE agents SET revoked_at = COALESCE(revoked_at, $2) WHERE name = $1", "agent"),
    };
    if tx.execute(sql, &[&name, &now.as_millis()]).await? == 0 {
        return Ok(Err(StoreError::NotFound { what, name: name.to_owned() }));
    }
    tx.execute("DELETE FROM credentials WHERE principal_kind = $1 AND principal_name = $2", &[&kind.as_str(), &name])
        .await?;
    tx.append(events).map_err(Fatal::Store)?;

    // Read in this transaction (under the chain-head lock every writer
    // takes): a release after it cannot count the identity's votes.
    let mut open = Vec::new();
    for request in requests::open(tx).await? {
        match request {
            Ok(request) => open.push(request),
            // An undecodable row cannot be withdrawn, and failing here would
            // leave a compromised identity's credentials alive.
            Err(e) => tracing::warn!(error = %e, "skipped an undecodable request while revoking"),
        }
    }
    let gone = PrincipalRef { kind, name: name.to_owned() };
    let cascade = lifecycle::revoke_identity(&gone, &open, now);
    for (id, refusal) in &cascade.skipped {
        tracing::warn!(%id, %refusal, "skipped a request whose index and body disagree");
    }
    let revoked = cascade.revoked();
    for moved in cascade.moves {
        let row = RequestRow::encode(&moved.request).map_err(Fatal::Store)?;
        requests::save(tx, &row).await?;
        tx.append(&moved.events.into_iter().map(AuditDraft::from).collect::<Vec<_>>()).map_err(Fatal::Store)?;
    }
    Ok(Ok(revoked))
}

const USER_COLUMNS: &str = user_columns!();
const AGENT_COLUMNS: &str = "SELECT name, owner, groups, created_at, revoked_at FROM agents";

fn decode_user(row: &tokio_postgres::Row) -> Result<User, StoreError> {
    Ok(User {
        name: col(row, 0)?,
        email: col(row, 1)?,
        groups: col(row, 2)?,
        created_at: Timestamp::from_millis(col(row, 3)?),
        revoked_at: col::<Option<i64>>(row, 4)?.map(Timestamp::from_millis),
        display_name: col(row, 5)?,
        last_login: col::<Option<i64>>(row, 6)?.map(Timestamp::from_millis),
    })
}

fn decode_agent(row: &tokio_postgres::Row) -> Result<Agent, StoreError> {
    Ok(Agent {
        name: col(row, 0)?,
        owner: col(row, 1)?,
        groups: col(row, 2)?,
        created_at: Timestamp::from_millis(col(row, 3)?),
        revoked_at: col::<Option<i64>>(row, 4)?.map(Timestamp::from_millis),
    })
}

async fn query(
    client: &Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<tokio_postgres::Row>, StoreError> {
    let stmt = client.prepare_cached(sql).await.map_err(db)?;
    client.query(&stmt, params).await.map_err(db)
}

pub(crate) async fn user(client: &Client, name: &str) -> Result<Option<User>, StoreError> {
    query(client, &format!("{USER_COLUMNS} WHERE name = $1"), &[&name]).await?.first().map(decode_user).transpose()
}

pub(crate) async fn users_with_email(client: &Client, email: &str) -> Result<Vec<User>, StoreError> {
    let key = PersonKey::from_email(email);
    let rows = query(client, &format!("{USER_COLUMNS} WHERE email_key = $1 ORDER BY name"), &[&key.as_str()]).await?;
    rows.iter().map(decode_user).collect()
}

pub(crate) async fn list_users(client: &Client) -> Result<Vec<User>, StoreError> {
    query(client, &format!("{USER_COLUMNS} ORDER BY name"), &[]).await?.iter().map(decode_user).collect()
}

pub(crate) async fn agent(client: &Client, name: &str) -> Result<Option<Agent>, StoreError> {
    query(client, &format!("{AGENT_COLUMNS} WHERE name = $1"), &[&name]).await?.first().map(decode_agent).transpose()
}

pub(crate) async fn list_agents(client: &Client) -> Result<Vec<Agent>, StoreError> {
    query(client, &format!("{AGENT_COLUMNS} ORDER BY name"), &[]).await?.iter().map(decode_agent).collect()
}

/// The live identity holding this credential.
pub(crate) async fn principal_by_token_hash(
    client: &Client,
    token_hash: &str,
) -> Result<Option<Principal>, StoreError> {
    // Revocation deletes credentials, but the revoked_at checks keep a
    // token dead even if a row were ever left behind.
    let rows = query(
        client,
        "SELECT 'user', u.name, u.email, NULL::text, u.groups
           FROM credentials c JOIN users u ON u.name = c.principal_name
          WHERE c.token_hash = $1 AND c.principal_kind = 'user' AND u.revoked_at IS NULL
         UNION ALL
         SELECT 'agent', a.name, NULL::text, a.owner, a.groups
           FROM credentials c JOIN agents a ON a.name = c.principal_name
          WHERE c.token_hash = $1 AND c.principal_kind = 'agent' AND a.revoked_at IS NULL",
        &[&token_hash],
    )
    .await?;
    let Some(row) = rows.first() else { return Ok(None) };
    let kind = match col::<&str>(row, 0)? {
        "user" => PrincipalKind::User,
        "agent" => PrincipalKind::Agent,
        other => return Err(StoreError::Corrupt(format!("unknown principal kind `{other}`"))),
    };
    Ok(Some(Principal { kind, name: col(row, 1)?, email: col(row, 2)?, owner: col(row, 3)?, groups: col(row, 4)? }))
}
