//! TCP for what does not fit a datagram (state syncs of large clusters, a
//! key-value map's full state): one connection per frame, the frame a
//! 4-byte big-endian length and then exactly the bytes a datagram would
//! carry (same header, same seal). The listener shares the gossip port
//! number. Bounded everywhere: at most [`MAX_OPEN`] streams are read at
//! once, each within [`READ_TIMEOUT`] and [`crate::codec::MAX_STREAM`]
//! bytes; anything else is counted and dropped. Sending is bounded the
//! same way ([`Sender`]).

use crate::codec::{MAX_STREAM, Refused};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

/// Inbound streams read (or waiting for the loop) at once, at most;
/// another is closed at once and counted as `busy`.
pub const MAX_OPEN: usize = 16;
/// Time to read a whole inbound frame (a stream still sending after it
/// counts as malformed); also the time to write an outbound one.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A frame read off a stream, or why none could be.
pub struct Inbound {
    /// The frame (what a datagram would carry), or why it was refused.
    pub frame: Result<Vec<u8>, Refused>,
    /// The connection's source address: its port is not the one the
    /// sender gossips on.
    pub from: SocketAddr,
}

async fn read_frame(s: &mut TcpStream) -> Result<Vec<u8>, Refused> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .await
        .map_err(|_| Refused::Malformed)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_STREAM {
        return Err(Refused::TooLarge);
    }
    // Grows with what arrives, not with what the length claims.
    let mut buf = Vec::new();
    s.take(len as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(|_| Refused::Malformed)?;
    if buf.len() < len {
        return Err(Refused::Malformed);
    }
    Ok(buf)
}

/// Accepts streams until `tx` closes.
pub async fn accept(listener: TcpListener, tx: mpsc::Sender<Inbound>) {
    let open = Arc::new(Semaphore::new(MAX_OPEN));
    loop {
        let Ok((mut s, from)) = listener.accept().await else {
            // Out of descriptors, say: do not spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            // Too many at once: refuse this one rather than queue it.
            let _ = tx
                .send(Inbound {
                    frame: Err(Refused::Busy),
                    from,
                })
                .await;
            continue;
        };
        if tx.is_closed() {
            return;
        }
        let tx = tx.clone();
        tokio::spawn(async move {
            let frame = tokio::time::timeout(READ_TIMEOUT, read_frame(&mut s))
                .await
                .unwrap_or(Err(Refused::Malformed));
            // The permit is held until the loop has the frame, so at most
            // MAX_OPEN frames exist at once, read or waiting.
            let _ = tx.send(Inbound { frame, from }).await;
            drop(permit);
        });
    }
}

/// Outbound streams at once, at most.
pub const MAX_SENDING: usize = 16;
/// Frame bytes in flight at once, at most (a few full frames): a peer that
/// accepts and never reads holds at most this much of an agent's memory.
pub const MAX_SENDING_BYTES: usize = 16 * 1024 * 1024;

/// Sends frames, each on a connection of its own in the background,
/// within [`MAX_SENDING`] streams and [`MAX_SENDING_BYTES`]: past either a
/// frame is dropped (and counted by the caller) rather than queued; what
/// goes by stream is a state sync, which anti-entropy sends again.
#[derive(Debug, Clone)]
pub struct Sender {
    streams: Arc<Semaphore>,
    /// One permit per KiB.
    kib: Arc<Semaphore>,
}

impl Default for Sender {
    fn default() -> Self {
        Sender {
            streams: Arc::new(Semaphore::new(MAX_SENDING)),
            kib: Arc::new(Semaphore::new(MAX_SENDING_BYTES / 1024)),
        }
    }
}

impl Sender {
    /// Starts sending `frame` to `to`; false if it was dropped.
    pub fn send(&self, to: SocketAddr, frame: Vec<u8>) -> bool {
        let kib = u32::try_from(frame.len().div_ceil(1024)).unwrap_or(u32::MAX);
        let Ok(one) = self.streams.clone().try_acquire_owned() else {
            return false;
        };
        let Ok(bytes) = self.kib.clone().try_acquire_many_owned(kib) else {
            return false;
        };
        tokio::spawn(async move {
            send(to, frame).await;
            drop((one, bytes));
        });
        true
    }

    /// Streams being sent now.
    pub fn sending(&self) -> usize {
        MAX_SENDING - self.streams.available_permits()
    }
}

/// Sends one frame on a connection of its own.
async fn send(to: SocketAddr, frame: Vec<u8>) {
    let Ok(Ok(mut s)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(to)).await else {
        tracing::debug!("no stream to {to}");
        return;
    };
    let len = (frame.len() as u32).to_be_bytes();
    let write = async {
        s.write_all(&len).await?;
        s.write_all(&frame).await?;
        s.shutdown().await
    };
    if tokio::time::timeout(READ_TIMEOUT, write).await.is_err() {
        tracing::debug!("stream to {to} timed out");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that accepts connections and never reads holds at most the
    /// bound: the frames past it are dropped at once, not queued.
    #[tokio::test]
    async fn a_peer_that_never_reads_holds_at_most_the_bound() {
        let sink = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let to = sink.local_addr().unwrap();
        let out = Sender::default();
        let frame = vec![7u8; 1024 * 1024];
        let sent = (0..100).filter(|_| out.send(to, frame.clone())).count();
        assert_eq!(sent, MAX_SENDING_BYTES / frame.len(), "bytes bound");
        assert!(out.sending() <= MAX_SENDING);
        // Small frames: the count bound.
        let out = Sender::default();
        let sent = (0..100).filter(|_| out.send(to, vec![1; 10])).count();
        assert_eq!(sent, MAX_SENDING);
        drop(sink);
    }
}
