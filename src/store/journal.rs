//! Group commit for the gateway's durable writes. Tunnels hand their session
//! records and audit events to one writer task, which commits whatever is queued
//! in a single transaction: under a burst, one fsync serves many tunnels. Each
//! caller still waits until its own entry is durable (invariant 2).

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{JournalEntry, Store};

/// Entries committed together at most.
const MAX_BATCH: usize = 256;
/// Entries waiting at most; beyond, callers wait for room (back-pressure).
const QUEUE: usize = 4096;

/// Why a journal write did not become durable.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JournalError {
    /// The store refused the transaction.
    #[error("store refused the write: {0}")]
    Store(String),
    /// The writer task has stopped.
    #[error("journal writer stopped")]
    Closed,
}

struct Request {
    entry: JournalEntry,
    done: oneshot::Sender<Result<(), JournalError>>,
}

/// Handle to the journal writer; cheap to clone.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Request>,
}

impl Journal {
    /// Starts the writer task. It ends when every handle is dropped.
    pub fn start(store: Arc<dyn Store>) -> (Self, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        let task = tokio::spawn(writer(store, rx));
        (Self { tx }, task)
    }

    /// Writes `entry` and returns once it is committed.
    pub async fn write(&self, entry: JournalEntry) -> Result<(), JournalError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Request { entry, done })
            .await
            .map_err(|_| JournalError::Closed)?;
        wait.await.map_err(|_| JournalError::Closed)?
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Request>) {
    let mut entries = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        entries.push(first.entry);
        waiters.push(first.done);
        while entries.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    entries.push(r.entry);
                    waiters.push(r.done);
                }
                Err(_) => break,
            }
        }
        match store.write_journal(&entries).await {
            Ok(()) => {
                for w in waiters.drain(..) {
                    let _ = w.send(Ok(()));
                }
            }
            Err(e) if entries.len() == 1 => {
                tracing::error!(error = %e, "journal write failed");
                for w in waiters.drain(..) {
                    let _ = w.send(Err(JournalError::Store(e.to_string())));
                }
            }
            Err(e) => {
                // One bad entry must not sink the others: retry them one by one.
                tracing::warn!(error = %e, batch = entries.len(), "group commit failed, retrying entries one by one");
                for (entry, w) in entries.iter().zip(waiters.drain(..)) {
                    let r = store
                        .write_journal(std::slice::from_ref(entry))
                        .await
                        .map_err(|e| JournalError::Store(e.to_string()));
                    if let Err(e) = &r {
                        tracing::error!(error = %e, "journal write failed");
                    }
                    let _ = w.send(r);
                }
            }
        }
        entries.clear();
    }
}
