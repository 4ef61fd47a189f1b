//! Kubernetes clusters through the gateway. kubectl (or any client) is
//! pointed at `https://<gateway>/k8s/<cluster>` with its countersign key as
//! the bearer token (`countersign kubeconfig <cluster>` writes that
//! kubeconfig); each API request is a `k8s.request` action, decided
//! before the API server sees it, and sent with the gateway's own
//! credential, never the caller's.
//!
//! - [`config`]: the `[[kubernetes]]` sections;
//! - [`endpoint`]: the routes, and a request through the approval loop
//!   ([`countersign_gateway::gate`]); reading and forwarding reuse
//!   `countersign-http`'s request and response handling;
//! - [`preview`]: the impact preview of a held write (a server-side dry
//!   run), and [`diff`]: what it would change, as review cards show it;
//! - [`upstream`]: the API server's client (token or client certificate);
//! - [`stream`]: exec, attach and port-forward streams passed through;
//! - [`status`]: Kubernetes `Status` answers for requests that do not run;
//! - [`kubeconfig`]: the kubeconfig a client uses.
//!
//! The facts policies see (`context.facts.kubectl`: verb, API group,
//! resource, namespace, name, subresource, dry-run; `context.facts.shell`
//! for an `exec`'s command) are derived by `countersign-facts` from the
//! request's method, path, query and body, as the API server reads them.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod config;
pub mod diff;
pub mod endpoint;
pub mod kubeconfig;
pub mod preview;
pub mod status;
pub mod stream;
pub mod upstream;

pub use config::{KubernetesConfig, RawKubernetes};
pub use endpoint::router;

/// The action kind of every API request: in the `k8s.*` family (whose
/// facts are kubectl facts), like `http.request` for the HTTP proxy.
pub const KIND: &str = "k8s.request";
