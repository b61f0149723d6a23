//! The evidence bundle `portier export` writes for auditors and regulators:
//! sessions, windows with their approvals, emergency grants with their
//! justifications and reviews, reports, the audit slice with its hashes, and a
//! `SHA256SUMS` manifest (`sha256sum -c SHA256SUMS` checks it).

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use crate::store::{AuditFilter, Report, ReportFilter, SessionFilter, Store, WindowFilter};

/// What went wrong while exporting.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("encoding: {0}")]
    Encode(String),
    #[error("{0} exists and is not empty: refusing to mix bundles")]
    NotEmpty(PathBuf),
}

/// CSV columns of `reports.csv`.
pub const REPORT_COLUMNS: [&str; 10] = [
    "window_id",
    "vendor_id",
    "filed_at",
    "filed_by",
    "outcome",
    "summary",
    "actions",
    "follow_up",
    "addenda",
    "sessions",
];

/// Reports as CSV (RFC 4180), each with its number of sessions.
pub fn reports_csv(rows: &[(&Report, usize)]) -> Result<String, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(REPORT_COLUMNS)?;
    for (r, sessions) in rows {
        w.write_record([
            r.window_id.to_string(),
            r.vendor_id.to_string(),
            r.filed_at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            r.filed_by.clone(),
            r.outcome.clone(),
            r.summary.clone(),
            r.actions.clone(),
            r.follow_up.clone().unwrap_or_default(),
            r.addenda.len().to_string(),
            sessions.to_string(),
        ])?;
    }
    let bytes = w.into_inner().map_err(|e| e.into_error())?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

struct Bundle {
    dir: PathBuf,
    files: Vec<(String, String)>,
}

impl Bundle {
    fn write(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let path = self.dir.join(name);
        let mut f = std::fs::File::create(&path).map_err(|source| ExportError::Io {
            path: path.clone(),
            source,
        })?;
        f.write_all(bytes)
            .and_then(|_| f.sync_all())
            .map_err(|source| ExportError::Io { path, source })?;
        self.files.push((name.to_owned(), hex::encode(Sha256::digest(bytes))));
        Ok(())
    }

    fn json<T: serde::Serialize>(&mut self, name: &str, value: &T) -> Result<(), ExportError> {
        let text = serde_json::to_vec_pretty(value).map_err(|e| ExportError::Encode(e.to_string()))?;
        self.write(name, &text)
    }
}

/// Writes the bundle for `[since, until)` into `out` (created; must be empty).
/// Returns the files written.
pub async fn export(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    out: &Path,
) -> Result<Vec<String>, ExportError> {
    let io = |source| ExportError::Io {
        path: out.to_owned(),
        source,
    };
    std::fs::create_dir_all(out).map_err(io)?;
    if std::fs::read_dir(out).map_err(io)?.next().is_some() {
        return Err(ExportError::NotEmpty(out.to_owned()));
    }
    let mut b = Bundle {
        dir: out.to_owned(),
        files: Vec::new(),
    };

    let sessions = store
        .list_sessions(&SessionFilter {
            since: Some(since),
            until: Some(until),
            ..SessionFilter::default()
        })
        .await?;
    b.json("sessions.json", &sessions)?;
    let csv = crate::api::sessions_csv(&sessions).map_err(|e| ExportError::Encode(e.message))?;
    b.write("sessions.csv", csv.as_bytes())?;

    let windows = store
        .list_windows(&WindowFilter {
            since: Some(since),
            until: Some(until),
            ..WindowFilter::default()
        })
        .await?;
    let emergency: Vec<_> = windows.iter().filter(|w| w.emergency).cloned().collect();
    b.json("windows.json", &windows)?;
    b.json("emergency_grants.json", &emergency)?;

    let reports = store
        .list_reports(&ReportFilter {
            vendor_id: None,
            since: Some(since),
            until: Some(until),
        })
        .await?;
    b.json("reports.json", &reports)?;
    let rows: Vec<(&Report, usize)> = reports
        .iter()
        .map(|r| (r, sessions.iter().filter(|s| s.window_id == r.window_id).count()))
        .collect();
    let bytes = reports_csv(&rows).map_err(|e| ExportError::Encode(e.to_string()))?;
    b.write("reports.csv", bytes.as_bytes())?;

    // The audit slice, page by page, with its hashes: verifiable on its own
    // from the event before the slice (its prev_hash is in the first line).
    let mut audit = Vec::new();
    let mut after = None;
    loop {
        let page = store
            .list_audit(&AuditFilter {
                since: Some(since),
                until: Some(until),
                after_seq: after,
                action: None,
                limit: Some(5_000),
                newest_first: false,
            })
            .await?;
        for r in &page {
            audit.extend_from_slice(
                serde_json::to_string(r)
                    .map_err(|e| ExportError::Encode(e.to_string()))?
                    .as_bytes(),
            );
            audit.push(b'\n');
        }
        match page.last() {
            Some(last) if page.len() == 5_000 => after = Some(last.seq),
            _ => break,
        }
    }
    b.write("audit.jsonl", &audit)?;

    let manifest: String = b.files.iter().map(|(name, sum)| format!("{sum}  {name}\n")).collect();
    let path = out.join("SHA256SUMS");
    std::fs::write(&path, manifest).map_err(|source| ExportError::Io { path, source })?;
    let mut names: Vec<String> = b.files.into_iter().map(|(n, _)| n).collect();
    names.push("SHA256SUMS".into());
    Ok(names)
}
