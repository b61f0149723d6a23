//! `portier dossier`: the security dossier a hospital asks of its supplier,
//! assembled from what the program already knows — the rights table, the SBOM,
//! the flow matrix — and from the deployment itself (TLS stack, certificates,
//! database). Nothing here is a second copy of those sources.

pub mod architecture;
pub mod crypto;
pub mod guide;
pub mod html;
mod served;

pub use served::{Served, ServedError};

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::config::Settings;
use crate::ops::Lang;

/// One file of the dossier.
#[derive(Debug, Clone)]
pub struct Document {
    pub name: String,
    pub bytes: Vec<u8>,
}

impl Document {
    /// The media type its extension names.
    pub fn content_type(&self) -> &'static str {
        let ext = self.name.rsplit('.').next().unwrap_or_default();
        match ext {
            "md" => "text/markdown; charset=utf-8",
            "html" => "text/html; charset=utf-8",
            "json" => "application/json",
            "csv" => "text/csv; charset=utf-8",
            "svg" => "image/svg+xml",
            // DOT and Mermaid sources are text to read or feed to a renderer.
            _ => "text/plain; charset=utf-8",
        }
    }
}

/// One document of the index, in its formats (`<stem>.<format>` each).
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Entry {
    pub stem: String,
    pub title: String,
    pub formats: Vec<String>,
}

/// The whole dossier of a deployment, in one language.
#[derive(Debug, Clone)]
pub struct Dossier {
    pub documents: Vec<Document>,
    pub index: Vec<Entry>,
    /// Why the SVG was not rendered, if it was not.
    pub svg_note: Option<String>,
}

impl Dossier {
    /// The document named `name` (e.g. `crypto.html`), if there is one.
    pub fn get(&self, name: &str) -> Option<&Document> {
        self.documents.iter().find(|d| d.name == name)
    }

    fn put(&mut self, name: &str, bytes: impl AsRef<[u8]>) {
        self.documents.push(Document {
            name: name.to_owned(),
            bytes: bytes.as_ref().to_vec(),
        });
    }
}

/// What `write` produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub files: Vec<String>,
    /// Why the SVG was not rendered, if it was not.
    pub svg_note: Option<String>,
}

/// The flow matrix's inputs for this node, as `portier flows` gathers them.
pub fn node_flows(settings: &Settings) -> crate::flows::NodeFlows {
    crate::flows::NodeFlows {
        gateway: settings.gateway.listen,
        gateway_tls_versions: settings.gateway.tls_versions.clone(),
        api: settings.api.listen,
        database: crate::app::redact_url(&settings.database.url),
        webhooks: settings
            .notify
            .webhooks
            .iter()
            .map(|w| crate::redact::redact_url(&w.url))
            .collect(),
        syslog: settings.notify.syslog.clone(),
        proxy_protocol_from: settings.gateway.proxy_protocol_from.clone(),
    }
}

/// Renders `dot` to SVG with Graphviz, if installed; a renderer that does not
/// answer within [`RENDER_TIMEOUT`] is killed.
async fn render_svg(dot: &str) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncWriteExt;
    let mut child = tokio::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("Graphviz `dot` not available ({e})"))?;
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(dot.as_bytes()).await.map_err(|e| e.to_string())?;
        }
        child.wait_with_output().await.map_err(|e| e.to_string())
    };
    let out = tokio::time::timeout(RENDER_TIMEOUT, run)
        .await
        .map_err(|_| format!("dot did not answer within {} s", RENDER_TIMEOUT.as_secs()))??;
    if !out.status.success() {
        return Err(format!("dot failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

/// How long Graphviz may take to draw the schema.
const RENDER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Writes the dossier of the deployment configured by `config` into `out`
/// (created; it must be absent or empty) in `lang`.
pub async fn write(config: &Path, out: &Path, lang: Lang) -> anyhow::Result<Written> {
    let settings = Settings::load(config).with_context(|| format!("loading {}", config.display()))?;
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        anyhow::bail!("{} is not empty", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let store = crate::store::connect(&settings.database.url).await?;
    let at_rest = crate::secrets::AtRest::locate(&settings.secrets).context("finding the master key")?;
    let dossier = assemble(&settings, &at_rest, store.as_ref(), lang).await?;
    let mut files = Vec::new();
    for d in &dossier.documents {
        let path = out.join(&d.name);
        std::fs::write(&path, &d.bytes).with_context(|| format!("writing {}", path.display()))?;
        files.push(d.name.clone());
    }
    Ok(Written {
        files,
        svg_note: dossier.svg_note,
    })
}

/// The dossier of the deployment `settings` describe (as read from the file,
/// secrets still sealed), from its database `store`, in `lang`.
pub async fn assemble(
    settings: &Settings,
    at_rest: &crate::secrets::AtRest,
    store: &dyn crate::store::Store,
    lang: Lang,
) -> anyhow::Result<Dossier> {
    let config = settings
        .source
        .as_ref()
        .map_or_else(|| "portier.toml".to_owned(), |p| p.display().to_string());
    let vendors = store.list_vendors().await?;
    let devices = store.list_devices().await?;
    let users = store.list_users().await?;
    let bootstrap_active = users
        .iter()
        .any(|u| u.name == "bootstrap-admin" && u.disabled_at.is_none());
    let credentials = store.all_credentials().await?;
    let nodes = store.list_nodes().await?;
    let at_rest_report = crate::secrets::describe(settings, at_rest, Some(store)).await?;
    let fr = lang == Lang::Fr;
    let t = |en: &'static str, f: &'static str| if fr { f } else { en };
    let code = lang.code();
    let mut d = Dossier {
        documents: Vec::new(),
        index: Vec::new(),
        svg_note: None,
    };
    let mut index: Vec<(String, &'static str, Vec<String>)> = Vec::new();
    // Rights per profile: the enforced table.
    for (ext, format) in [
        ("md", crate::rights::Format::Markdown),
        ("html", crate::rights::Format::Html),
        ("json", crate::rights::Format::Json),
    ] {
        d.put(
            &format!("rights.{ext}"),
            crate::rights::document(crate::rights::TABLE, lang, format),
        );
    }
    index.push((
        "rights".into(),
        t("Rights per profile", "Droits par profil"),
        vec!["md".into(), "html".into(), "json".into()],
    ));

    // Authentication and cryptography.
    let hashes: Vec<String> = credentials
        .iter()
        .filter_map(|(_, c)| c.password_hash.clone())
        .collect();
    let crypto = crypto::report(settings, &hashes, at_rest_report.clone())?;
    let md = crypto.to_markdown(lang);
    d.put("crypto.md", &md);
    d.put(
        "crypto.html",
        html::page(
            t("Authentication and cryptography", "Authentification et cryptographie"),
            &md,
            code,
        ),
    );
    d.put("crypto.json", serde_json::to_string_pretty(&crypto)?);
    index.push((
        "crypto".into(),
        t("Authentication and cryptography", "Authentification et cryptographie"),
        vec!["md".into(), "html".into(), "json".into()],
    ));

    // Network flow matrix.
    let rows = crate::flows::matrix(&node_flows(settings), &vendors, &devices);
    let md = format!(
        "# {}\n\n{}",
        t("Network flow matrix", "Matrice des flux réseau"),
        crate::flows::to_markdown(&rows)
    );
    d.put("flows.md", &md);
    d.put(
        "flows.html",
        html::page(t("Network flow matrix", "Matrice des flux réseau"), &md, code),
    );
    d.put("flows.csv", crate::flows::to_csv(&rows)?);
    d.put("flows.json", serde_json::to_string_pretty(&rows)?);
    index.push((
        "flows".into(),
        t("Network flow matrix", "Matrice des flux réseau"),
        vec!["md".into(), "html".into(), "csv".into(), "json".into()],
    ));

    // Architecture.
    let mut node_names = vec![settings.gateway.node.clone()];
    for n in &nodes {
        if n.stopped_at.is_none() && !node_names.contains(&n.name) {
            node_names.push(n.name.clone());
        }
    }
    let deployment = architecture::Deployment {
        nodes: node_names,
        gateway: settings.gateway.listen.to_string(),
        api: settings.api.listen.to_string(),
        database: if settings.database.url.starts_with("sqlite:") {
            "SQLite".into()
        } else {
            "PostgreSQL".into()
        },
        balancers: settings
            .gateway
            .proxy_protocol_from
            .iter()
            .map(|n| n.to_string())
            .collect(),
        vendors: vendors.clone(),
        devices: devices.clone(),
        users,
    };
    let dot = deployment.to_dot();
    let mermaid = deployment.to_mermaid();
    d.put("architecture.dot", &dot);
    d.put("architecture.mmd", &mermaid);
    let mut arch_formats = vec!["md".into(), "html".into(), "dot".into(), "mmd".into()];
    let svg_note = match render_svg(&dot).await {
        Ok(svg) => {
            d.put("architecture.svg", svg);
            arch_formats.push("svg".into());
            None
        }
        Err(e) => {
            tracing::warn!(error = %e, "architecture schema not rendered to SVG");
            Some(e)
        }
    };
    let mut md = format!("# {}\n\n", t("Architecture", "Architecture"));
    let _ = writeln!(
        md,
        "{}\n",
        t(
            "The deployment as configured and recorded: nodes, database, balancer, vendors' networks, devices grouped by subnet (/24, /64 or host name), the admin API's accounts per role.",
            "Le déploiement tel que configuré et enregistré : nœuds, base, répartiteur, réseaux des fournisseurs, équipements groupés par sous-réseau (/24, /64 ou nom d'hôte), comptes de l'API d'administration par rôle."
        )
    );
    match &svg_note {
        None => md.push_str("![architecture](architecture.svg)\n\n"),
        Some(note) => {
            let _ = writeln!(md, "{}: {note}\n", t("SVG not rendered", "SVG non produit"));
        }
    }
    let _ = writeln!(
        md,
        "## Mermaid\n\n```mermaid\n{mermaid}```\n\n## Graphviz DOT\n\n```dot\n{dot}```"
    );
    d.put("architecture.md", &md);
    let mut page = html::page(t("Architecture", "Architecture"), &md, code);
    if svg_note.is_none() {
        page = page.replace(
            "<p>![architecture](architecture.svg)</p>",
            "<p><img src=\"architecture.svg\" alt=\"architecture\"></p>",
        );
    }
    d.put("architecture.html", &page);
    index.push((
        "architecture".into(),
        t("Architecture schema", "Schéma d'architecture"),
        arch_formats,
    ));

    // Third-party software.
    let crates = crate::sbom::crates()?;
    let table = crate::sbom::third_party(&crates, None);
    d.put("third-party.md", table.to_markdown(lang));
    d.put("third-party.html", table.to_html(lang));
    d.put("third-party.json", table.to_json()?);
    let bom = crate::sbom::cyclonedx(&crates, None, uuid::Uuid::new_v4(), chrono::Utc::now());
    d.put("sbom.cdx.json", serde_json::to_string_pretty(&bom)?);
    index.push((
        "third-party".into(),
        t("Third-party software", "Logiciels tiers"),
        vec!["md".into(), "html".into(), "json".into()],
    ));

    // Installation guide and procedures.
    let facts = guide::Facts {
        config: config.clone(),
        gateway: settings.gateway.listen,
        api: settings.api.listen,
        database: crate::app::redact_url(&settings.database.url),
        sqlite: settings.database.url.starts_with("sqlite:"),
        lockdown_file: settings.gateway.lockdown_file.display().to_string(),
        flows: rows,
        bootstrap_active,
        bootstrap_hours: settings.auth.bootstrap_token_hours,
        key_files: crate::secrets::rotate::key_paths(settings)
            .iter()
            .map(|p| p.display().to_string())
            .collect(),
        at_rest: at_rest_report,
        notify_configured: !settings.notify.webhooks.is_empty() || settings.notify.syslog.is_some(),
        contacts: vendors
            .iter()
            .map(|v| (v.name.clone(), v.security_contact.clone()))
            .collect(),
        require_mfa: settings.auth.require_mfa.clone(),
    };
    for (name, title, md) in [
        (
            "installation",
            t(
                "Installation and commissioning guide",
                "Guide d'installation et de mise en service",
            ),
            guide::installation(&facts, lang),
        ),
        (
            "procedures",
            t("Procedures", "Procédures"),
            guide::procedures(&facts, lang),
        ),
    ] {
        d.put(&format!("{name}.md"), &md);
        d.put(&format!("{name}.html"), html::page(title, &md, code));
        index.push((name.into(), title, vec!["md".into(), "html".into()]));
    }
    index.push((
        "sbom".into(),
        t("CycloneDX SBOM", "Nomenclature CycloneDX"),
        vec!["cdx.json".into()],
    ));

    // The index.
    let title = t("Security dossier", "Dossier de sécurité");
    let mut md = format!("# {title}\n\n");
    let _ = writeln!(
        md,
        "{} `{}`, Portier {}.\n",
        t(
            "Generated by `portier dossier` from",
            "Produit par `portier dossier` à partir de"
        ),
        config,
        env!("CARGO_PKG_VERSION")
    );
    let mut html_items = String::new();
    for (stem, label, formats) in &index {
        let links: Vec<String> = formats.iter().map(|f| format!("[{f}]({stem}.{f})")).collect();
        let _ = writeln!(md, "- {label}: {}", links.join(" · "));
        let links: Vec<String> = formats
            .iter()
            .map(|f| format!("<a href=\"{stem}.{f}\">{f}</a>"))
            .collect();
        let _ = writeln!(
            html_items,
            "<li>{}: {}</li>",
            crate::rights::escape_html(label),
            links.join(" · ")
        );
    }
    d.put("index.md", &md);
    let html = html::page(title, &format!("# {title}\n"), code)
        .replace("</h1>\n", &format!("</h1>\n<ul>\n{html_items}</ul>\n"));
    d.put("index.html", &html);
    d.index = index
        .into_iter()
        .map(|(stem, title, formats)| Entry {
            stem,
            title: title.to_owned(),
            formats,
        })
        .collect();
    d.svg_note = svg_note;
    Ok(d)
}
