//! psycopg 3 (libpq underneath) through the endpoint, with server-side
//! prepared statements (`prepare=True`, `prepare_threshold=0`): the shared
//! scenarios of [`crate::scenarios`].

use crate::peers::Client::Psycopg;
use crate::scenarios;

#[tokio::test]
async fn allowed_reads_return_the_rows() {
    scenarios::reads(Psycopg).await;
}

#[tokio::test]
async fn a_prepared_statement_reused_is_decided_at_each_execution() {
    scenarios::prepared(Psycopg).await;
}

#[tokio::test]
async fn a_forbidden_statement_gets_42501_and_the_session_goes_on() {
    scenarios::forbidden(Psycopg).await;
}

#[tokio::test]
async fn a_held_delete_runs_once_approved() {
    scenarios::held_then_approved(Psycopg).await;
}

#[tokio::test]
async fn a_held_statement_in_a_transaction_block_runs_once_approved_and_commits() {
    scenarios::held_in_a_transaction(Psycopg).await;
}
