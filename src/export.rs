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
    /// The archive would be larger than allowed for one download.
    #[error("the archive would hold {size} bytes, more than {max}: choose a shorter period, or use `portier export`")]
    TooLarge { size: u64, max: u64 },
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

/// Largest evidence archive built for a download; a longer period is exported
/// with `portier export` on the server instead.
pub const MAX_ARCHIVE_BYTES: u64 = 512 * 1024 * 1024;

/// The evidence bundle of a period as one tar archive in a private temporary
/// directory, removed when this value is dropped (after the download, or when
/// the client goes away).
#[derive(Debug)]
pub struct EvidenceArchive {
    dir: PathBuf,
    /// The archive file.
    pub path: PathBuf,
    /// Its size in bytes.
    pub size: u64,
    /// Its file name for the download: `portier-evidence-<since>-<until>.tar`.
    pub name: String,
}

impl Drop for EvidenceArchive {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "evidence archive not removed");
        }
    }
}

/// Writes the bundle of `[since, until)` (the same files as [`export`]) into a
/// fresh directory under `tmp`, then packs it as `<name>.tar` with the bundle's
/// files under one top directory. Refused with [`ExportError::TooLarge`] past
/// `max_bytes`.
pub async fn export_archive(
    store: &dyn Store,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    tmp: &Path,
    max_bytes: u64,
) -> Result<EvidenceArchive, ExportError> {
    let stem = format!(
        "portier-evidence-{}-{}",
        since.format("%Y%m%dT%H%MZ"),
        until.format("%Y%m%dT%H%MZ")
    );
    let dir = tmp.join(format!("portier-export-{}", uuid::Uuid::new_v4().simple()));
    create_private_dir(&dir)?;
    // From here the directory is removed with the value, whatever happens.
    let mut archive = EvidenceArchive {
        path: dir.join(format!("{stem}.tar")),
        dir,
        size: 0,
        name: format!("{stem}.tar"),
    };
    let bundle = archive.dir.join("bundle");
    let files = export(store, since, until, &bundle).await?;
    let (path, top) = (archive.path.clone(), stem.clone());
    let size = tokio::task::spawn_blocking(move || pack(&bundle, &files, &top, &path, max_bytes))
        .await
        .map_err(|e| ExportError::Encode(format!("archive task: {e}")))??;
    archive.size = size;
    Ok(archive)
}

fn create_private_dir(dir: &Path) -> Result<(), ExportError> {
    let io = |source| ExportError::Io {
        path: dir.to_owned(),
        source,
    };
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(io)
}

/// Packs `files` of `bundle` into the tar at `out` under `top/`; returns its size.
fn pack(bundle: &Path, files: &[String], top: &str, out: &Path, max_bytes: u64) -> Result<u64, ExportError> {
    let io = |path: &Path| {
        let path = path.to_owned();
        move |source| ExportError::Io { path, source }
    };
    // Each file costs its size rounded to 512-byte blocks plus a header block.
    let mut total: u64 = 1024;
    for name in files {
        let path = bundle.join(name);
        let len = std::fs::metadata(&path).map_err(io(&path))?.len();
        total = total.saturating_add(len.div_ceil(512) * 512 + 512);
    }
    if total > max_bytes {
        return Err(ExportError::TooLarge {
            size: total,
            max: max_bytes,
        });
    }
    let file = std::fs::File::create(out).map_err(io(out))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(file));
    let mtime = u64::try_from(Utc::now().timestamp()).unwrap_or(0);
    for name in files {
        let path = bundle.join(name);
        let f = std::fs::File::open(&path).map_err(io(&path))?;
        let len = f.metadata().map_err(io(&path))?.len();
        // Plain headers: no owner, user or group names of the server leak out.
        let mut header = tar::Header::new_ustar();
        header.set_size(len);
        header.set_mode(0o644);
        header.set_mtime(mtime);
        header.set_entry_type(tar::EntryType::Regular);
        tar.append_data(&mut header, format!("{top}/{name}"), f)
            .map_err(io(&path))?;
    }
    let mut w = tar.into_inner().map_err(io(out))?;
    w.flush().map_err(io(out))?;
    let file = w.into_inner().map_err(|e| ExportError::Io {
        path: out.to_owned(),
        source: e.into_error(),
    })?;
    file.sync_all().map_err(io(out))?;
    Ok(file.metadata().map_err(io(out))?.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bundle_packs_under_one_directory_and_reads_back() {
        let dir = std::env::temp_dir().join(format!("portier-pack-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(dir.join("b")).unwrap();
        std::fs::write(dir.join("b/a.json"), b"[]").unwrap();
        std::fs::write(dir.join("b/SHA256SUMS"), b"x  a.json\n").unwrap();
        let files = vec!["a.json".to_owned(), "SHA256SUMS".to_owned()];
        let out = dir.join("x.tar");
        let size = pack(&dir.join("b"), &files, "top", &out, MAX_ARCHIVE_BYTES).unwrap();
        assert_eq!(size, std::fs::metadata(&out).unwrap().len());
        let mut names = Vec::new();
        for e in tar::Archive::new(std::fs::File::open(&out).unwrap()).entries().unwrap() {
            names.push(e.unwrap().path().unwrap().display().to_string());
        }
        assert_eq!(names, ["top/a.json", "top/SHA256SUMS"]);
        assert!(matches!(
            pack(&dir.join("b"), &files, "top", &out, 2048),
            Err(ExportError::TooLarge { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
