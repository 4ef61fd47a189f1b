//! asyncpg through the endpoint: its own protocol code, the extended
//! protocol with binary formats, `conn.prepare()` reused and
//! `conn.transaction()`; the shared scenarios of [`crate::scenarios`].

use crate::peers::Client::Asyncpg;
use crate::scenarios;

#[tokio::test]
async fn allowed_reads_return_the_rows() {
    scenarios::reads(Asyncpg).await;
}

#[tokio::test]
async fn a_prepared_statement_reused_is_decided_at_each_execution() {
    scenarios::prepared(Asyncpg).await;
}

#[tokio::test]
async fn a_forbidden_statement_gets_42501_and_the_session_goes_on() {
    scenarios::forbidden(Asyncpg).await;
}

#[tokio::test]
async fn a_held_delete_runs_once_approved() {
    scenarios::held_then_approved(Asyncpg).await;
}

#[tokio::test]
async fn a_held_statement_in_a_transaction_block_runs_once_approved_and_commits() {
    scenarios::held_in_a_transaction(Asyncpg).await;
}
