//! Integration tests of the HTTP proxy with real peers: the FastAPI
//! upstream under uvicorn, and curl, httpx, requests and Node's `fetch`
//! as agents, and the `websockets` client for WebSockets (see [`support`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod attacks;
mod clients;
mod flows;
mod support;
mod websockets;
