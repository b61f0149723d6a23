//! Terminating a live session, wherever it runs.

use std::time::Duration;

use super::{unavailable, Actor, Ops, OpsError, OpsResult};
use crate::domain::{EndReason, SessionId};
use crate::events::Event;
use crate::guard::Pending;
use crate::rights::Function;
use crate::store::{Change, Effects, Session};

/// A termination's outcome.
#[derive(Debug, Clone)]
pub struct Terminated {
    pub session: Session,
    /// Cut here, or its record shows it ended; `false`: the termination is
    /// committed but the node holding the session has not recorded the cut yet.
    pub cut: bool,
}

/// How long a termination of a session held by another node waits for that
/// node to record the end (it cuts within a second of the commit).
const REMOTE_CUT_WAIT: Duration = Duration::from_secs(3);

impl Ops {
    /// Terminates a live session (security), `end_reason = terminated`. Cut here
    /// first if this node holds it; otherwise the committed feed entry makes the
    /// node that holds it cut it, and the answer waits (briefly) for its record.
    pub async fn terminate_session(&self, who: &Actor, id: &SessionId, reason: String) -> OpsResult<Terminated> {
        who.may(Function::TerminateSession)?;
        // Invariant 7: cut first. A session id is unguessable and security may see
        // every session, so cutting before the lookup reveals nothing.
        let cut = self.registry.cut_session(id, EndReason::Terminated);
        let done = Effects::audit(self.event(
            who,
            Event::SessionTerminated,
            id.as_str(),
            serde_json::json!({"reason": reason, "cut_by": if cut { "this node" } else { "its node" }}),
        ))
        .change(Change::Terminate(id.clone()));
        let session = match self.store.session(id).await {
            Ok(session) => session,
            Err(e) if cut && unavailable(&e) => {
                tracing::error!(error = %e, session = %id, "session cut; its termination is recorded when the database is back");
                self.guard().defer(Pending::Record(done));
                return Err(OpsError::unavailable(
                    "the database cannot be reached: the session was cut on this node; its termination is recorded as soon as the database is back",
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if !cut {
            if session.ended_at.is_some() {
                return Err(OpsError::conflict("the session has already ended"));
            }
            let live = self.store.live_nodes(self.now() - self.rules.node_stale).await?;
            if !live.contains(&session.node) {
                return Err(OpsError::conflict(format!(
                    "the session is not live anywhere: its node {} is down; its record is closed when that node restarts or is declared lost",
                    session.node
                )));
            }
        }
        if let Err(e) = self.store.record(&done).await {
            if cut && unavailable(&e) {
                tracing::error!(error = %e, "termination not recorded yet; retried");
                self.guard().defer(Pending::Record(done));
                return Ok(Terminated { session, cut: true });
            }
            return Err(e.into());
        }
        if cut {
            return Ok(Terminated { session, cut: true });
        }
        // Held by another node: it cuts on the feed entry just committed.
        let deadline = tokio::time::Instant::now() + REMOTE_CUT_WAIT;
        loop {
            let now = self.store.session(id).await?;
            if now.ended_at.is_some() || tokio::time::Instant::now() >= deadline {
                let cut = now.ended_at.is_some();
                return Ok(Terminated { session: now, cut });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
