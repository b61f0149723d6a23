//! The journal's group commit writes a batch in a few statements, with the
//! audit chain linked in memory (and, on SQLite, its head remembered between
//! batches): the trail must chain exactly as entry-by-entry appends did, when
//! another writer appends between batches, when a batch mixes every kind of
//! entry, and when a session end is retried after it was already written.

use chrono::Utc;
use portier::audit::{self, AuditEvent};
use portier::domain::{EndReason, SessionId};
use portier::events::Event;
use portier::store::{AuditFilter, JournalEntry, Notice, Session, SessionEnd, SessionFilter};

use crate::common::*;
use crate::on_both_backends;

fn start(sc: &Scene, id: &SessionId) -> JournalEntry {
    let now = audit::truncate_micros(Utc::now());
    JournalEntry::SessionStarted(
        Session {
            id: id.clone(),
            window_id: sc.window.id.clone(),
            vendor_id: sc.vendor.id.clone(),
            technician_id: sc.tech.id.clone(),
            technician_subject: "CN=alice".into(),
            device_id: sc.device.id.clone(),
            source_ip: "127.0.0.2".parse().unwrap(),
            source_port: 40_000,
            node: "local".into(),
            started_at: now,
            ended_at: None,
            bytes_from_vendor: 0,
            bytes_to_vendor: 0,
            end_reason: None,
        },
        AuditEvent::new(
            now,
            "gateway",
            Event::SessionStarted,
            id.as_str(),
            "success",
            serde_json::json!({"n": "é\"\u{1}"}),
        ),
    )
}

fn end(id: &SessionId, bytes: u64) -> JournalEntry {
    let now = audit::truncate_micros(Utc::now());
    JournalEntry::SessionEnded(
        SessionEnd {
            id: id.clone(),
            ended_at: now,
            bytes_from_vendor: bytes,
            bytes_to_vendor: bytes + 1,
            end_reason: EndReason::ClientClosed,
        },
        AuditEvent::new(
            now,
            "gateway",
            Event::SessionEnded,
            id.as_str(),
            "success",
            serde_json::json!({}),
        ),
    )
}

fn other(object: &str) -> AuditEvent {
    AuditEvent::new(
        Utc::now(),
        "test",
        Event::AdmissionDenied,
        object,
        "denied",
        serde_json::json!({}),
    )
}

async fn batches_chain_like_single_appends(db: TestDb) {
    let pki = Pki::generate();
    let sc = scene(db.store.as_ref(), &pki, "127.0.0.1:9".parse().unwrap()).await;
    let store = db.store.clone();
    let before = store.list_audit(&AuditFilter::default()).await.unwrap().len();
    let generation = store.generation().get();

    // The window's first sessions: marked once, the feed hears of it once.
    let ids: Vec<SessionId> = (0..5).map(|_| SessionId::generate()).collect();
    let batch: Vec<JournalEntry> = ids.iter().map(|id| start(&sc, id)).collect();
    store.write_journal(&batch).await.unwrap();
    assert!(
        store.generation().get() > generation,
        "the first session of a window moves the admission state"
    );
    let marked = store.generation().get();

    // Another writer appends between two batches (the API, the CLI).
    store.append_audit(&other("between")).await.unwrap();

    // A mixed batch: ends (one listed twice), plain events, a notice, a start.
    let late = SessionId::generate();
    let mixed = vec![
        end(&ids[0], 10),
        JournalEntry::Audit(other("mixed-1")),
        end(&ids[1], 20),
        end(&ids[0], 99),
        JournalEntry::Notice(Notice::new(Event::SessionStarted, serde_json::json!({})), Utc::now()),
        start(&sc, &late),
        JournalEntry::Audit(other("mixed-2")),
    ];
    store.write_journal(&mixed).await.unwrap();
    assert_eq!(
        store.generation().get(),
        marked,
        "an already marked window changes nothing"
    );

    // A retried end that did commit writes nothing twice.
    store.append_audit(&other("between-2")).await.unwrap();
    store.write_journal(&[end(&ids[1], 20)]).await.unwrap();
    store
        .write_journal(&[JournalEntry::Audit(other("last"))])
        .await
        .unwrap();

    let trail = store.list_audit(&AuditFilter::default()).await.unwrap();
    let new: Vec<(&str, &str)> = trail[before..]
        .iter()
        .map(|r| (r.action.as_str(), r.object.as_str()))
        .collect();
    let mut want: Vec<(&str, &str)> = ids.iter().map(|id| ("session.started", id.as_str())).collect();
    want.extend([
        ("admission.denied", "between"),
        ("session.ended", ids[0].as_str()),
        ("admission.denied", "mixed-1"),
        ("session.ended", ids[1].as_str()),
        ("session.started", late.as_str()),
        ("admission.denied", "mixed-2"),
        ("admission.denied", "between-2"),
        ("admission.denied", "last"),
    ]);
    assert_eq!(new, want);
    let v = audit::verify_store(store.as_ref(), |_| {}).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.events as usize, trail.len());

    let sessions = store.list_sessions(&SessionFilter::default()).await.unwrap();
    assert_eq!(sessions.len(), 6);
    let first = sessions.iter().find(|s| s.id == ids[0]).unwrap();
    assert_eq!(
        (first.bytes_from_vendor, first.end_reason),
        (10, Some(EndReason::ClientClosed))
    );
    assert!(sessions.iter().find(|s| s.id == late).unwrap().ended_at.is_none());
}
on_both_backends!(
    journal_batches_chain_like_single_appends,
    super::batches_chain_like_single_appends
);

/// A session end waits for the next entry to share its commit (one commit per
/// tunnel under a steady stream), and alone it is still written after the delay.
async fn ends_ride_with_the_next_commit(db: TestDb) {
    use portier::store::{Durability, Journal, JournalSettings};
    let pki = Pki::generate();
    let sc = scene(db.store.as_ref(), &pki, "127.0.0.1:9".parse().unwrap()).await;
    let first = SessionId::generate();
    db.store.write_journal(&[start(&sc, &first)]).await.unwrap();

    // A delay no test waits out: the end can only be written with the start.
    let settings = JournalSettings {
        end_delay: std::time::Duration::from_secs(600),
        ..JournalSettings::default()
    };
    let (journal, _task) = Journal::start_with(db.store.clone(), settings);
    let ending = tokio::spawn({
        let journal = journal.clone();
        let e = end(&first, 5);
        async move { journal.write(e).await }
    });
    // Let the writer take the end and start waiting.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert!(!ending.is_finished(), "an end alone was committed at once");
    let next = SessionId::generate();
    let started = journal.write(start(&sc, &next)).await.unwrap();
    assert_eq!(started, Durability::Durable);
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), ending)
        .await
        .expect("the end was not committed with the start")
        .unwrap()
        .unwrap();
    assert_eq!(ended, Durability::Durable);
    let stats = journal.batch_stats();
    assert_eq!((stats.batches(), stats.entries()), (1, 2), "one commit for both");

    // Alone, an end is written once the delay has passed.
    let settings = JournalSettings {
        end_delay: std::time::Duration::from_millis(50),
        ..JournalSettings::default()
    };
    let (journal, _task) = Journal::start_with(db.store.clone(), settings);
    let wrote = tokio::time::timeout(std::time::Duration::from_secs(10), journal.write(end(&next, 7)))
        .await
        .expect("a lone end was never committed")
        .unwrap();
    assert_eq!(wrote, Durability::Durable);
    let sessions = db.store.list_sessions(&SessionFilter::default()).await.unwrap();
    let ended: Vec<_> = sessions
        .iter()
        .filter(|s| s.id == first || s.id == next)
        .map(|s| (s.bytes_from_vendor, s.end_reason))
        .collect();
    assert_eq!(ended.len(), 2);
    assert!(
        ended.iter().all(|(_, r)| *r == Some(EndReason::ClientClosed)),
        "{ended:?}"
    );
    let v = audit::verify_store(db.store.as_ref(), |_| {}).await.unwrap();
    assert!(v.valid, "{v:?}");
}
on_both_backends!(
    journal_ends_ride_with_the_next_commit,
    super::ends_ride_with_the_next_commit
);
