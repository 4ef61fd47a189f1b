//! The PostgreSQL endpoint: agents connect with any PostgreSQL client,
//! log in with their countersign credential, and every statement they
//! send goes through the approval loop before it reaches the database,
//! on a connection the gateway opened with its own credential.
//!
//! - [`config`]: the `[[postgres]]` sections;
//! - [`listener`]: accepting clients — TLS, the startup message, the
//!   login, cancel requests;
//! - [`session`]: one client's statements, decided and forwarded;
//! - [`relay`]: what the database answers, passed back unchanged, read
//!   for outcomes;
//! - [`upstream`]: the gateway's own login to the database;
//! - [`preview`]: the impact preview of a write (`EXPLAIN`);
//! - [`wire`]: the protocol's messages; [`split`]: a query's statements.

pub mod config;
pub mod listener;
pub mod preview;
mod relay;
mod session;
pub mod split;
pub mod upstream;
pub mod wire;

pub use config::{PostgresConfig, RawPostgres};
pub use listener::serve;

/// A byte stream to a client or the database, in clear or over TLS.
pub trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static> Io for T {}
pub type Stream = Box<dyn Io>;
