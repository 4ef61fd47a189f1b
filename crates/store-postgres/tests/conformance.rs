//! The store conformance suite, run against PostgreSQL: one throwaway
//! cluster for this test process, one fresh database per scenario.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use countersign_store_postgres::testing::TempCluster;
use countersign_store_postgres::PostgresStore;

async fn make() -> (PostgresStore, ()) {
    let cluster = TempCluster::shared().expect("a throwaway PostgreSQL cluster");
    let url = cluster.create_database().await.expect("a fresh database");
    let store = PostgresStore::connect(&url).await.expect("connect");
    (store, ())
}

countersign_store::conformance_tests!(make);
