//! The byte pump between technician and device, and the loop that ends it: when
//! a side closes, when the tunnel is cut, or at its deadline.
//!
//! Both directions are polled from one task over `&mut` streams, so no split lock
//! is needed; the byte counters are plain integers.
//!
//! A direction holds a copy buffer only while bytes are in flight: it takes one
//! to read, and gives it back as soon as the read would block with nothing left
//! to write. An idle tunnel (most of them, most of the time) holds none; the free
//! buffers wait in a small per-thread pool, so a busy tunnel does not allocate
//! (nor zero) one per wake-up.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::registry::LiveSession;
use crate::clock::SharedClock;
use crate::domain::EndReason;

/// Buffer per direction while data flows: large enough to fill a TLS record
/// several times over.
pub const BUF_SIZE: usize = 64 * 1024;
/// Free buffers kept per runtime thread; beyond, they go back to the allocator.
const POOL_PER_THREAD: usize = 16;

thread_local! {
    static POOL: RefCell<Vec<Box<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// A buffer from this thread's pool, or a new one.
fn take_buf() -> Box<[u8]> {
    POOL.try_with(|p| p.borrow_mut().pop())
        .ok()
        .flatten()
        .unwrap_or_else(|| vec![0; BUF_SIZE].into_boxed_slice())
}

/// Returns a buffer to this thread's pool (or frees it when the pool is full).
fn give_back(buf: Box<[u8]>) {
    // During thread teardown the pool is gone: the buffer is simply freed.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        if p.len() < POOL_PER_THREAD {
            p.push(buf);
        }
    });
}

/// One direction of the copy.
struct Direction {
    /// Held only while `pos < cap` or a read is being attempted.
    buf: Option<Box<[u8]>>,
    pos: usize,
    cap: usize,
    read_done: bool,
    need_flush: bool,
    done: bool,
    /// Bytes delivered to the writer.
    bytes: u64,
}

impl Drop for Direction {
    fn drop(&mut self) {
        if let Some(buf) = self.buf.take() {
            give_back(buf);
        }
    }
}

impl Direction {
    fn new() -> Self {
        Self {
            buf: None,
            pos: 0,
            cap: 0,
            read_done: false,
            need_flush: false,
            done: false,
            bytes: 0,
        }
    }

    /// Whether this direction holds a copy buffer now (tests).
    fn holds_buffer(&self) -> bool {
        self.buf.is_some()
    }

    /// Gives the buffer back once everything read has been written.
    fn release(&mut self) {
        if self.pos == self.cap {
            if let Some(buf) = self.buf.take() {
                give_back(buf);
            }
        }
    }

    /// Copies until the reader reaches end of stream, then shuts the writer down.
    fn poll_copy<R, W>(&mut self, cx: &mut Context<'_>, mut r: Pin<&mut R>, mut w: Pin<&mut W>) -> Poll<io::Result<()>>
    where
        R: AsyncRead + ?Sized,
        W: AsyncWrite + ?Sized,
    {
        loop {
            if self.pos == self.cap && !self.read_done {
                let buf = self.buf.get_or_insert_with(take_buf);
                let mut rb = ReadBuf::new(buf);
                match r.as_mut().poll_read(cx, &mut rb) {
                    Poll::Ready(Ok(())) => {
                        let n = rb.filled().len();
                        if n == 0 {
                            self.read_done = true;
                            self.release();
                        } else {
                            self.pos = 0;
                            self.cap = n;
                        }
                    }
                    Poll::Ready(Err(e)) => {
                        self.release();
                        return Poll::Ready(Err(e));
                    }
                    Poll::Pending => {
                        // Nothing in flight: the buffer goes back until data arrives.
                        self.release();
                        // Nothing more to read for now: push out what the writer buffered.
                        if self.need_flush {
                            ready!(w.as_mut().poll_flush(cx))?;
                            self.need_flush = false;
                        }
                        return Poll::Pending;
                    }
                }
            }
            while self.pos < self.cap {
                let chunk = self
                    .buf
                    .as_deref()
                    .and_then(|b| b.get(self.pos..self.cap))
                    .unwrap_or_default();
                let n = ready!(w.as_mut().poll_write(cx, chunk))?;
                if n == 0 {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                self.pos += n;
                self.bytes += n as u64;
                self.need_flush = true;
            }
            if self.read_done {
                ready!(w.as_mut().poll_flush(cx))?;
                ready!(w.as_mut().poll_shutdown(cx))?;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

/// Which side of the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Vendor,
    Device,
}

/// Something that happened in the pump.
#[derive(Debug)]
enum PumpEvent {
    /// `side` finished sending (end of stream, or an error while reading or relaying it).
    Finished(Side, Option<io::Error>),
}

/// Copies both ways between the vendor's stream and the device's.
pub struct Pump<'a, V: ?Sized, D: ?Sized> {
    vendor: &'a mut V,
    device: &'a mut D,
    up: Direction,
    down: Direction,
}

impl<'a, V, D> Pump<'a, V, D>
where
    V: AsyncRead + AsyncWrite + Unpin + ?Sized,
    D: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    /// A pump between the two streams.
    pub fn new(vendor: &'a mut V, device: &'a mut D) -> Self {
        Self {
            vendor,
            device,
            up: Direction::new(),
            down: Direction::new(),
        }
    }

    /// Bytes delivered from the vendor to the device.
    pub fn bytes_from_vendor(&self) -> u64 {
        self.up.bytes
    }

    /// Bytes delivered from the device to the vendor.
    pub fn bytes_to_vendor(&self) -> u64 {
        self.down.bytes
    }

    /// Copy buffers held now, 0 to 2 (an idle tunnel holds none).
    pub fn buffers_held(&self) -> usize {
        usize::from(self.up.holds_buffer()) + usize::from(self.down.holds_buffer())
    }

    fn both_done(&self) -> bool {
        self.up.done && self.down.done
    }

    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<PumpEvent> {
        if !self.up.done {
            if let Poll::Ready(r) = self
                .up
                .poll_copy(cx, Pin::new(&mut *self.vendor), Pin::new(&mut *self.device))
            {
                self.up.done = true;
                return Poll::Ready(PumpEvent::Finished(Side::Vendor, r.err()));
            }
        }
        if !self.down.done {
            if let Poll::Ready(r) = self
                .down
                .poll_copy(cx, Pin::new(&mut *self.device), Pin::new(&mut *self.vendor))
            {
                self.down.done = true;
                return Poll::Ready(PumpEvent::Finished(Side::Device, r.err()));
            }
        }
        Poll::Pending
    }
}

/// How a side's finishing ends the session.
fn reason_for(side: Side, err: Option<&io::Error>) -> EndReason {
    use io::ErrorKind::*;
    let closed = match err {
        None => true,
        // A peer that drops TCP without TLS close_notify, or resets, has closed.
        Some(e) => matches!(
            e.kind(),
            UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
        ),
    };
    match (side, closed) {
        (Side::Vendor, true) => EndReason::ClientClosed,
        (Side::Device, true) => EndReason::DeviceClosed,
        (_, false) => EndReason::Error,
    }
}

/// Runs the pump until the tunnel ends, and says why it ended. After the first
/// side closes, the other gets `linger` to finish sending what it has.
pub async fn drive<V, D>(
    pump: &mut Pump<'_, V, D>,
    live: &LiveSession,
    clock: &SharedClock,
    linger: Duration,
) -> EndReason
where
    V: AsyncRead + AsyncWrite + Unpin + ?Sized,
    D: AsyncRead + AsyncWrite + Unpin + ?Sized,
{
    let mut deadline_rx = live.watch_deadline();
    let mut deadline = *deadline_rx.borrow_and_update();
    // The wait is on the product's clock: the wall clock re-read at least every
    // `clock::MAX_NAP` (it can jump), or a test's manual clock, which wakes it
    // when moved past the deadline.
    let mut deadline_wait = clock.sleep_until(deadline);
    // The sender lives in `live`, so the watch cannot close while we run; if it
    // did, nothing could move the deadline any more and the branch is retired.
    let mut deadline_movable = true;
    let mut first_close: Option<EndReason> = None;
    let linger_sleep = tokio::time::sleep(Duration::MAX);
    tokio::pin!(linger_sleep);
    loop {
        tokio::select! {
            biased;
            _ = live.cut_requested() => return live.cut_reason().unwrap_or(EndReason::Terminated),
            () = &mut deadline_wait => {
                // The deadline may have moved since the wait began.
                deadline = *deadline_rx.borrow_and_update();
                if clock.now() >= deadline {
                    return live.deadline_reason();
                }
                deadline_wait = clock.sleep_until(deadline);
            }
            changed = deadline_rx.changed(), if deadline_movable => {
                if changed.is_err() {
                    deadline_movable = false;
                    continue;
                }
                let moved = *deadline_rx.borrow_and_update();
                if moved != deadline {
                    deadline = moved;
                    deadline_wait = clock.sleep_until(deadline);
                }
            }
            PumpEvent::Finished(side, err) = poll_fn(|cx| {
                let event = pump.poll_event(cx);
                // Two relaxed stores per wake-up: cheap, and checkpoints see fresh counts.
                live.set_bytes(pump.bytes_from_vendor(), pump.bytes_to_vendor());
                event
            }) => {
                if let Some(e) = &err {
                    tracing::debug!(?side, error = %e, "tunnel side finished with an error");
                }
                let reason = reason_for(side, err.as_ref());
                let first = *first_close.get_or_insert(reason);
                if pump.both_done() || reason == EndReason::Error {
                    return first;
                }
                linger_sleep.as_mut().reset(tokio::time::Instant::now() + linger);
            }
            _ = &mut linger_sleep, if first_close.is_some() => {
                return first_close.unwrap_or(EndReason::Error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn copies_both_ways_and_counts() {
        let (mut vendor_far, mut vendor) = tokio::io::duplex(1024);
        let (mut device, mut device_far) = tokio::io::duplex(1024);
        let live = LiveSession::new(
            "s".into(),
            "w".into(),
            "v".into(),
            "t".into(),
            "d".into(),
            chrono::Utc::now(),
            chrono::Utc::now() + chrono::Duration::hours(1),
        );
        let clock: SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
        let echo = tokio::spawn(async move {
            let mut buf = vec![0; 100_000];
            let mut got = 0;
            while got < 100_000 {
                let n = device_far.read(&mut buf[got..]).await.unwrap();
                device_far.write_all(&buf[got..got + n]).await.unwrap();
                got += n;
            }
        });
        let client = tokio::spawn(async move {
            let data = vec![7u8; 100_000];
            let (mut r, mut w) = tokio::io::split(&mut vendor_far);
            let write = async {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut back = Vec::new();
            let read = r.read_to_end(&mut back);
            let (_, n) = tokio::join!(write, read);
            n.unwrap();
            back
        });
        let mut pump = Pump::new(&mut vendor, &mut device);
        let reason = drive(&mut pump, &live, &clock, Duration::from_secs(2)).await;
        assert_eq!(reason, EndReason::ClientClosed);
        assert_eq!(pump.bytes_from_vendor(), 100_000);
        drop(pump);
        drop(device);
        drop(vendor);
        echo.await.unwrap();
        assert_eq!(client.await.unwrap().len(), 100_000);
    }

    /// Polls the pump once, whatever it says.
    async fn poll_once<V, D>(pump: &mut Pump<'_, V, D>)
    where
        V: AsyncRead + AsyncWrite + Unpin + ?Sized,
        D: AsyncRead + AsyncWrite + Unpin + ?Sized,
    {
        poll_fn(|cx| {
            let _ = pump.poll_event(cx);
            Poll::Ready(())
        })
        .await;
    }

    /// A direction holds its buffer only while bytes are in flight.
    #[tokio::test]
    async fn an_idle_pump_holds_no_buffer() {
        let (mut vendor_far, mut vendor) = tokio::io::duplex(1024);
        let (mut device, mut device_far) = tokio::io::duplex(4 * BUF_SIZE);
        let mut pump = Pump::new(&mut vendor, &mut device);
        poll_once(&mut pump).await;
        assert_eq!(pump.buffers_held(), 0, "no data yet");
        vendor_far.write_all(b"hello").await.unwrap();
        poll_once(&mut pump).await;
        assert_eq!(pump.bytes_from_vendor(), 5);
        assert_eq!(pump.buffers_held(), 0, "everything read was written");
        drop(pump);
        let mut got = [0u8; 5];
        device_far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello");
        // A writer that takes nothing keeps the bytes (and the buffer) until it does.
        let (mut small_far, mut small) = tokio::io::duplex(16);
        let mut pump = Pump::new(&mut small, &mut device);
        device_far.write_all(&[7u8; 100]).await.unwrap();
        poll_once(&mut pump).await;
        assert_eq!(pump.bytes_to_vendor(), 16);
        assert_eq!(pump.buffers_held(), 1);
        let mut drained = vec![0u8; 100];
        let reader = async {
            small_far.read_exact(&mut drained).await.unwrap();
        };
        let pumping = async {
            while pump.bytes_to_vendor() < 100 {
                poll_once(&mut pump).await;
                tokio::task::yield_now().await;
            }
        };
        tokio::join!(reader, pumping);
        assert_eq!(drained, vec![7u8; 100]);
        assert_eq!(pump.buffers_held(), 0);
    }

    fn live_until(now: chrono::DateTime<chrono::Utc>, deadline: chrono::DateTime<chrono::Utc>) -> LiveSession {
        LiveSession::new(
            "s".into(),
            "w".into(),
            "v".into(),
            "t".into(),
            "d".into(),
            now,
            deadline,
        )
    }

    /// Runs `drive` on idle streams beside `moves`; says why and when (tokio's
    /// time, since the start) it ended. With tokio's time paused, a tunnel that
    /// no clock move wakes lets the runtime jump to the timeout, so a missed wake
    /// fails at once instead of hanging.
    async fn drive_idle(
        live: &LiveSession,
        clock: &SharedClock,
        moves: impl std::future::Future<Output = ()>,
    ) -> (EndReason, Duration) {
        let (_vendor_far, mut vendor) = tokio::io::duplex(1024);
        let (mut device, _device_far) = tokio::io::duplex(1024);
        let mut pump = Pump::new(&mut vendor, &mut device);
        let started = tokio::time::Instant::now();
        let drive = async {
            let reason = tokio::time::timeout(
                Duration::from_secs(3600),
                drive(&mut pump, live, clock, Duration::from_secs(2)),
            )
            .await;
            (reason, started.elapsed())
        };
        let ((reason, after), ()) = tokio::join!(drive, moves);
        (reason.expect("the tunnel outlived every clock move"), after)
    }

    #[tokio::test(start_paused = true)]
    async fn cut_at_the_certificate_expiry_when_the_clock_jumps_past_it() {
        let now = chrono::Utc::now();
        let manual = std::sync::Arc::new(crate::clock::ManualClock::new(now));
        let clock: SharedClock = manual.clone();
        let live =
            live_until(now, now + chrono::Duration::hours(8)).with_certificate_expiry(now + chrono::Duration::hours(1));
        // Virtual time: the deadline is an hour away, then the clock passes it.
        let jump = async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            manual.advance(chrono::Duration::hours(1));
        };
        let (reason, after) = drive_idle(&live, &clock, jump).await;
        assert_eq!(reason, EndReason::CertificateExpired);
        // Woken by the move itself, not by a timer firing later.
        assert_eq!(after, Duration::from_millis(100), "noticed the jump late");
    }

    #[tokio::test(start_paused = true)]
    async fn an_extension_moves_the_clock_wait() {
        let now = chrono::Utc::now();
        let manual = std::sync::Arc::new(crate::clock::ManualClock::new(now));
        let clock: SharedClock = manual.clone();
        let live = live_until(now, now + chrono::Duration::hours(1));
        let moves = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            live.set_deadline(now + chrono::Duration::hours(2));
            tokio::time::sleep(Duration::from_millis(10)).await;
            // Past the original end, before the new one: still open.
            manual.advance(chrono::Duration::minutes(90));
            tokio::time::sleep(Duration::from_millis(10)).await;
            manual.advance(chrono::Duration::minutes(30));
        };
        let (reason, after) = drive_idle(&live, &clock, moves).await;
        assert_eq!(reason, EndReason::WindowEnded);
        assert_eq!(after, Duration::from_millis(30), "not ended at the new deadline");
    }

    /// Production: the wall clock, a deadline just ahead, cut within a nap of it.
    #[tokio::test]
    async fn cut_at_the_deadline_on_the_wall_clock() {
        let now = chrono::Utc::now();
        let deadline = now + chrono::Duration::milliseconds(300);
        let live = live_until(now, deadline);
        let clock: SharedClock = std::sync::Arc::new(crate::clock::SystemClock);
        let (reason, _) = drive_idle(&live, &clock, async {}).await;
        assert_eq!(reason, EndReason::WindowEnded);
        let late = chrono::Utc::now() - deadline;
        assert!(late >= chrono::Duration::zero(), "cut {} early", -late);
        assert!(late < chrono::Duration::seconds(1), "cut {late} late");
    }

    #[test]
    fn reasons_by_side_and_error() {
        assert_eq!(reason_for(Side::Vendor, None), EndReason::ClientClosed);
        assert_eq!(reason_for(Side::Device, None), EndReason::DeviceClosed);
        let eof = io::Error::from(io::ErrorKind::UnexpectedEof);
        assert_eq!(reason_for(Side::Vendor, Some(&eof)), EndReason::ClientClosed);
        let other = io::Error::other("boom");
        assert_eq!(reason_for(Side::Device, Some(&other)), EndReason::Error);
    }
}
