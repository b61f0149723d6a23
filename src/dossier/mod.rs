//! `portier dossier`: the security dossier a hospital asks of its supplier,
//! assembled from what the program already knows — the rights table, the SBOM,
//! the flow matrix — and from the deployment itself (TLS stack, certificates,
//! database). Nothing here is a second copy of those sources.

pub mod architecture;
pub mod crypto;
pub mod guide;
pub mod html;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::config::Settings;
use crate::ops::Lang;

/// What `write` produced.
#[derive(Debug, Clone)]
pub struct Written {
    pub files: Vec<String>,
    /// Why the SVG was not rendered, if it was not.
    pub svg_note: Option<String>,
}

fn put(dir: &Path, name: &str, text: &str, files: &mut Vec<String>) -> anyhow::Result<()> {
    std::fs::write(dir.join(name), text).with_context(|| format!("writing {}", dir.join(name).display()))?;
    files.push(name.to_owned());
    Ok(())
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

/// Renders `dot` to SVG with Graphviz, if installed.
fn render_svg(dot: &str) -> Result<Vec<u8>, String> {
    use std::io::Write;
    let mut child = std::process::Command::new("dot")
        .arg("-Tsvg")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("Graphviz `dot` not available ({e})"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(dot.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(format!("dot failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
    }
    Ok(out.stdout)
}

/// Writes the dossier of the deployment configured by `config` into `out`
/// (created; it must be absent or empty) in `lang`.
pub async fn write(config: &Path, out: &Path, lang: Lang) -> anyhow::Result<Written> {
    let settings = Settings::load(config).with_context(|| format!("loading {}", config.display()))?;
    if out.exists() && std::fs::read_dir(out)?.next().is_some() {
        anyhow::bail!("{} is not empty", out.display());
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let store = crate::store::connect(&settings.database.url).await?;
    let vendors = store.list_vendors().await?;
    let devices = store.list_devices().await?;
    let users = store.list_users().await?;
    let credentials = store.all_credentials().await?;
    let nodes = store.list_nodes().await?;
    let at_rest = crate::secrets::AtRest::locate(&settings.secrets).context("finding the master key")?;
    let at_rest_report = crate::secrets::describe(&settings, &at_rest, Some(store.as_ref())).await?;
    let fr = lang == Lang::Fr;
    let t = |en: &'static str, f: &'static str| if fr { f } else { en };
    let code = lang.code();
    let mut files = Vec::new();
    let mut index: Vec<(String, &'static str, Vec<String>)> = Vec::new();

    // Rights per profile: the enforced table.
    for (ext, format) in [
        ("md", crate::rights::Format::Markdown),
        ("html", crate::rights::Format::Html),
        ("json", crate::rights::Format::Json),
    ] {
        put(
            out,
            &format!("rights.{ext}"),
            &crate::rights::document(crate::rights::TABLE, lang, format),
            &mut files,
        )?;
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
    let crypto = crypto::report(&settings, &hashes, at_rest_report.clone())?;
    let md = crypto.to_markdown(lang);
    put(out, "crypto.md", &md, &mut files)?;
    put(
        out,
        "crypto.html",
        &html::page(
            t("Authentication and cryptography", "Authentification et cryptographie"),
            &md,
            code,
        ),
        &mut files,
    )?;
    put(out, "crypto.json", &serde_json::to_string_pretty(&crypto)?, &mut files)?;
    index.push((
        "crypto".into(),
        t("Authentication and cryptography", "Authentification et cryptographie"),
        vec!["md".into(), "html".into(), "json".into()],
    ));

    // Network flow matrix.
    let rows = crate::flows::matrix(&node_flows(&settings), &vendors, &devices);
    let md = format!(
        "# {}\n\n{}",
        t("Network flow matrix", "Matrice des flux réseau"),
        crate::flows::to_markdown(&rows)
    );
    put(out, "flows.md", &md, &mut files)?;
    put(
        out,
        "flows.html",
        &html::page(t("Network flow matrix", "Matrice des flux réseau"), &md, code),
        &mut files,
    )?;
    put(out, "flows.csv", &crate::flows::to_csv(&rows)?, &mut files)?;
    put(out, "flows.json", &serde_json::to_string_pretty(&rows)?, &mut files)?;
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
    put(out, "architecture.dot", &dot, &mut files)?;
    put(out, "architecture.mmd", &mermaid, &mut files)?;
    let mut arch_formats = vec!["md".into(), "html".into(), "dot".into(), "mmd".into()];
    let svg_note = match render_svg(&dot) {
        Ok(svg) => {
            std::fs::write(out.join("architecture.svg"), svg)?;
            files.push("architecture.svg".into());
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
    put(out, "architecture.md", &md, &mut files)?;
    let mut page = html::page(t("Architecture", "Architecture"), &md, code);
    if svg_note.is_none() {
        page = page.replace(
            "<p>![architecture](architecture.svg)</p>",
            "<p><img src=\"architecture.svg\" alt=\"architecture\"></p>",
        );
    }
    put(out, "architecture.html", &page, &mut files)?;
    index.push((
        "architecture".into(),
        t("Architecture schema", "Schéma d'architecture"),
        arch_formats,
    ));

    // Third-party software.
    let crates = crate::sbom::crates()?;
    let table = crate::sbom::third_party(&crates, None);
    put(out, "third-party.md", &table.to_markdown(lang), &mut files)?;
    put(out, "third-party.html", &table.to_html(lang), &mut files)?;
    put(out, "third-party.json", &table.to_json()?, &mut files)?;
    let bom = crate::sbom::cyclonedx(&crates, None, uuid::Uuid::new_v4(), chrono::Utc::now());
    put(out, "sbom.cdx.json", &serde_json::to_string_pretty(&bom)?, &mut files)?;
    index.push((
        "third-party".into(),
        t("Third-party software", "Logiciels tiers"),
        vec!["md".into(), "html".into(), "json".into()],
    ));

    // Installation guide and procedures.
    let bootstrap_active = store
        .list_users()
        .await?
        .iter()
        .any(|u| u.name == "bootstrap-admin" && u.disabled_at.is_none());
    let facts = guide::Facts {
        config: config.display().to_string(),
        gateway: settings.gateway.listen,
        api: settings.api.listen,
        database: crate::app::redact_url(&settings.database.url),
        sqlite: settings.database.url.starts_with("sqlite:"),
        lockdown_file: settings.gateway.lockdown_file.display().to_string(),
        flows: rows,
        bootstrap_active,
        bootstrap_hours: settings.auth.bootstrap_token_hours,
        key_files: crate::secrets::rotate::key_paths(&settings)
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
        put(out, &format!("{name}.md"), &md, &mut files)?;
        put(out, &format!("{name}.html"), &html::page(title, &md, code), &mut files)?;
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
        config.display(),
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
    put(out, "index.md", &md, &mut files)?;
    let html = html::page(title, &format!("# {title}\n"), code)
        .replace("</h1>\n", &format!("</h1>\n<ul>\n{html_items}</ul>\n"));
    put(out, "index.html", &html, &mut files)?;
    Ok(Written { files, svg_note })
}
