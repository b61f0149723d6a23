//! The pump's copy buffers are taken while bytes flow and given back when a
//! side goes quiet: no byte may be lost, duplicated or reordered at a buffer
//! boundary. Both directions carry different seeded streams at the same time,
//! written in chunks of random sizes (including exactly the buffer size and one
//! either side), with pauses that let the pump go idle mid-stream; each end
//! compares the SHA-256 of what it received with what the other sent, and the
//! session record's byte counts are checked too.

use std::net::SocketAddr;
use std::time::Duration;

use portier::gateway::BUF_SIZE;
use portier::store::SessionFilter;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::common::*;
use crate::on_both_backends;

/// Chunk sizes of one stream: the boundaries that matter, then random ones.
fn chunks(seed: u64) -> Vec<usize> {
    let mut sizes = vec![
        1,
        BUF_SIZE - 1,
        BUF_SIZE,
        BUF_SIZE + 1,
        2 * BUF_SIZE,
        16 * 1024 - 1,
        16 * 1024,
        16 * 1024 + 1,
        3,
        5 * BUF_SIZE + 17,
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    sizes.extend((0..30).map(|_| rng.gen_range(1..=3 * BUF_SIZE)));
    sizes
}

/// The stream's bytes, chunk by chunk (deterministic from the seed).
fn stream(seed: u64) -> Vec<Vec<u8>> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    chunks(seed)
        .into_iter()
        .map(|n| {
            let mut c = vec![0u8; n];
            rng.fill(&mut c[..]);
            c
        })
        .collect()
}

fn digest(chunks: &[Vec<u8>]) -> (u64, Vec<u8>) {
    let mut h = Sha256::new();
    let mut n = 0u64;
    for c in chunks {
        h.update(c);
        n += c.len() as u64;
    }
    (n, h.finalize().to_vec())
}

/// Writes the chunks one by one, flushing each, pausing now and then so the
/// far side's pump runs dry and gives its buffer back.
async fn send<W: AsyncWrite + Unpin>(w: &mut W, chunks: &[Vec<u8>], pause_every: usize) {
    for (i, c) in chunks.iter().enumerate() {
        w.write_all(c).await.unwrap();
        w.flush().await.unwrap();
        if i % pause_every == 0 {
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
    }
}

/// Reads exactly `len` bytes, in whatever pieces they come, and hashes them.
async fn receive<R: AsyncRead + Unpin>(r: &mut R, len: u64) -> (u64, Vec<u8>) {
    let mut h = Sha256::new();
    let mut got = 0u64;
    let mut buf = vec![0u8; 40_000];
    while got < len {
        let want = usize::try_from(len - got).unwrap().min(buf.len());
        let n = r.read(&mut buf[..want]).await.unwrap();
        assert!(n > 0, "stream ended after {got} of {len} bytes");
        h.update(&buf[..n]);
        got += n as u64;
    }
    (got, h.finalize().to_vec())
}

/// A device that sends its own stream while reading the technician's, and
/// closes only once both are complete. Reports the digest of what it read.
async fn streaming_device(
    to_vendor: Vec<Vec<u8>>,
    from_vendor_len: u64,
) -> (SocketAddr, oneshot::Receiver<(u64, Vec<u8>)>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        let (mut r, mut w) = s.into_split();
        let write = async {
            send(&mut w, &to_vendor, 5).await;
            w
        };
        let (mut w, got) = tokio::join!(write, receive(&mut r, from_vendor_len));
        w.shutdown().await.unwrap();
        let _ = tx.send(got);
    });
    (addr, rx)
}

async fn lazy_buffers_keep_every_byte(db: TestDb) {
    let up = stream(1);
    let down = stream(2);
    let (up_len, up_digest) = digest(&up);
    let (down_len, down_digest) = digest(&down);
    let (device, device_got) = streaming_device(down, up_len).await;

    let pki = Pki::generate();
    let s = scene(db.store.as_ref(), &pki, device).await;
    let gw = TestGateway::spawn(db.store.clone(), &pki).await;
    let tls = connect_from("127.0.0.2", gw.addr, "mri-1", pki.client_tls(Some(&s.tech_cert), TLS13))
        .await
        .unwrap();
    let (mut r, mut w) = tokio::io::split(tls);
    let write = async {
        send(&mut w, &up, 7).await;
        w
    };
    let (mut w, got) = tokio::time::timeout(Duration::from_secs(60), async {
        tokio::join!(write, receive(&mut r, down_len))
    })
    .await
    .expect("the streams did not complete within 60 s");
    assert_eq!(got, (down_len, down_digest), "device to technician");
    let device_got = tokio::time::timeout(Duration::from_secs(10), device_got)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(device_got, (up_len, up_digest), "technician to device");
    // The gateway may already have ended the tunnel (the device closed first).
    let _ = w.shutdown().await;
    // The device closed after its stream: nothing more arrives.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut rest)).await;
    assert!(rest.is_empty(), "{} unexpected bytes after the stream", rest.len());

    // The record counts every byte, each way.
    let session = eventually(|| {
        let store = db.store.clone();
        async move {
            let all = store.list_sessions(&SessionFilter::default()).await.ok()?;
            all.into_iter().find(|s| s.end_reason.is_some())
        }
    })
    .await;
    assert_eq!(session.bytes_from_vendor, up_len);
    assert_eq!(session.bytes_to_vendor, down_len);
    gw.stop().await;
}
on_both_backends!(
    lazy_buffers_keep_every_byte_both_ways,
    super::lazy_buffers_keep_every_byte
);
