//! A switched stream (exec, attach, port-forward: WebSocket or SPDY)
//! passed through byte for byte between kubectl and the API server, both
//! ways, until either side closes — or until the caller may no longer use
//! it ([`countersign_http::cut`], the same check that cuts a `watch` or
//! `logs -f`), when both connections are dropped at once. The
//! outcome records the bytes each way and how the stream ended.

use countersign_core::OutcomeStatus;
use countersign_http::cut::{Caller, Cut};
use countersign_http::forward::Record;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// The buffer each direction reads into.
const BUFFER: usize = 16 * 1024;

/// How a passed-through stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// Both sides closed their half.
    Closed,
    /// A read or write failed on either side.
    Broken,
    Cut(Cut),
}

/// Passes bytes between `client` and `api` until both halves are closed,
/// a side breaks, or `caller` is no longer accepted; the bytes sent to the
/// API server, back, and how it ended.
pub async fn pass<C, A>(client: &mut C, api: &mut A, caller: &mut Caller) -> (u64, u64, Ended)
where
    C: AsyncRead + AsyncWrite + Unpin,
    A: AsyncRead + AsyncWrite + Unpin,
{
    let (mut up, mut down) = (0u64, 0u64);
    let (mut client_open, mut api_open) = (true, true);
    let mut from_client = vec![0u8; BUFFER];
    let mut from_api = vec![0u8; BUFFER];
    while client_open || api_open {
        tokio::select! {
            read = client.read(&mut from_client), if client_open => match read {
                Ok(0) => {
                    client_open = false;
                    let _ = api.shutdown().await;
                }
                Ok(n) => {
                    match caller.unless_cut(send(api, &from_client[..n])).await {
                        Ok(Ok(())) => up += n as u64,
                        Ok(Err(_)) => return (up, down, Ended::Broken),
                        Err(cut) => return (up, down, Ended::Cut(cut)),
                    }
                }
                Err(_) => return (up, down, Ended::Broken),
            },
            read = api.read(&mut from_api), if api_open => match read {
                Ok(0) => {
                    api_open = false;
                    let _ = client.shutdown().await;
                }
                Ok(n) => {
                    match caller.unless_cut(send(client, &from_api[..n])).await {
                        Ok(Ok(())) => down += n as u64,
                        Ok(Err(_)) => return (up, down, Ended::Broken),
                        Err(cut) => return (up, down, Ended::Cut(cut)),
                    }
                }
                Err(_) => return (up, down, Ended::Broken),
            },
            cut = caller.no_longer_allowed() => return (up, down, Ended::Cut(cut)),
        }
    }
    (up, down, Ended::Closed)
}

async fn send<W: AsyncWrite + Unpin>(to: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    to.write_all(bytes).await?;
    to.flush().await
}

/// Records how a passed-through stream went: bytes each way and how it
/// ended, or (`None`) that it never started.
pub fn record(record: &Record, passed: Option<(u64, u64, Ended)>) {
    let (status, summary) = match passed {
        Some((up, down, ended)) => {
            let (status, how) = match ended {
                Ended::Closed => (OutcomeStatus::Succeeded, "closed".to_owned()),
                Ended::Broken => (OutcomeStatus::Failed, "broken off".to_owned()),
                Ended::Cut(cut) => (OutcomeStatus::Failed, cut.note()),
            };
            (status, format!("stream passed through: {up} bytes to the API server, {down} bytes back; {how}"))
        }
        None => (OutcomeStatus::Failed, "the stream could not be set up".to_owned()),
    };
    record.stream_ended(status, summary);
}
