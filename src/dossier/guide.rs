//! The installation and commissioning guide and the procedures, as templates
//! filled with the deployment's own values, in English and French.

use std::fmt::Write as _;

use crate::flows::Flow;
use crate::ops::Lang;
use crate::secrets::describe::SecretState;
use crate::secrets::AtRestReport;

/// The deployment's values the texts quote.
#[derive(Debug, Clone)]
pub struct Facts {
    pub config: String,
    pub gateway: std::net::SocketAddr,
    pub api: std::net::SocketAddr,
    pub database: String,
    pub sqlite: bool,
    pub lockdown_file: String,
    pub flows: Vec<Flow>,
    /// The bootstrap account, if it is still enabled.
    pub bootstrap_active: bool,
    pub bootstrap_hours: u32,
    pub at_rest: AtRestReport,
    pub key_files: Vec<String>,
    pub notify_configured: bool,
    /// (vendor, security contact).
    pub contacts: Vec<(String, Option<String>)>,
    pub require_mfa: Vec<crate::domain::Role>,
}

fn sel(lang: Lang, en: &'static str, fr: &'static str) -> &'static str {
    if lang == Lang::Fr {
        fr
    } else {
        en
    }
}

/// The installation and commissioning guide.
pub fn installation(f: &Facts, lang: Lang) -> String {
    let t = |en, fr| sel(lang, en, fr);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "# {}\n",
        t(
            "Installation and commissioning guide",
            "Guide d'installation et de mise en service"
        )
    );
    let _ = writeln!(
        o,
        "{} `{}`.\n",
        t(
            "Generated from the configuration",
            "Généré à partir de la configuration"
        ),
        f.config
    );

    let _ = writeln!(o, "## 1. {}\n", t("Ports to open", "Ports à ouvrir"));
    let _ = writeln!(
        o,
        "{}\n",
        t(
            "From the network flow matrix (flows.md): inbound to Portier, then Portier's outbound flows.",
            "D'après la matrice des flux (flows.md) : entrants vers Portier, puis sortants de Portier."
        )
    );
    let _ = writeln!(
        o,
        "| {} |\n| --- | --- | --- | --- |",
        t(
            "Flow | Source | Destination | Protocol",
            "Flux | Source | Destination | Protocole"
        )
    );
    for r in &f.flows {
        let _ = writeln!(o, "| `{}` | {} | {} | {} |", r.id, r.source, r.destination, r.protocol);
    }
    let _ = writeln!(
        o,
        "\n{} TCP/{} ({}) {} TCP/{} ({}).\n",
        t(
            "Open nothing else: the node listens on",
            "N'ouvrez rien d'autre : le nœud écoute sur"
        ),
        f.gateway.port(),
        t("gateway", "passerelle"),
        t("and", "et"),
        f.api.port(),
        t(
            "admin API, hospital network only",
            "API d'administration, réseau de l'hôpital seulement"
        )
    );

    let _ = writeln!(
        o,
        "## 2. {}\n",
        t("Accounts and services to disable", "Comptes et services à désactiver")
    );
    if f.bootstrap_active {
        let _ = writeln!(
            o,
            "- **{}** `bootstrap-admin` {} {} h). {} `portier token list --config {}`, `portier token revoke ID --config {}`.",
            t("Still active:", "Encore actif :"),
            t("— the bootstrap token printed by `init` (valid", "— le jeton initial affiché par `init` (valable"),
            f.bootstrap_hours,
            t("Create your own named accounts, then revoke it:", "Créez vos comptes nominatifs, puis révoquez-le :"),
            f.config,
            f.config
        );
    } else {
        let _ = writeln!(
            o,
            "- `bootstrap-admin`: {}",
            t("disabled — nothing to do.", "désactivé — rien à faire.")
        );
    }
    let _ = writeln!(
        o,
        "- {}\n",
        t(
            "Portier runs no other service: no shell, no file transfer, no web server besides the admin API. `portier serve --dev` is for trials only.",
            "Portier ne fait tourner aucun autre service : ni shell, ni transfert de fichiers, ni serveur web hors l'API d'administration. `portier serve --dev` est réservé aux essais."
        )
    );

    let _ = writeln!(
        o,
        "## 3. {}\n",
        t(
            "Privileged secrets to change or protect",
            "Secrets privilégiés à changer ou protéger"
        )
    );
    match &f.at_rest.master_key {
        Some(_) => {
            let _ = writeln!(o, "- {}", t("Master key found: keep its backup offline; `portier secrets rotate` re-encrypts everything under a new one.", "Clé maîtresse trouvée : gardez-en une copie hors ligne ; `portier secrets rotate` rechiffre tout sous une nouvelle."));
        }
        None => {
            let _ = writeln!(o, "- **{}**", t("No master key: private keys are stored in clear. Make one (`portier secrets new-key`) and run `portier secrets rotate` (docs/secrets.md).", "Pas de clé maîtresse : les clés privées sont stockées en clair. Créez-en une (`portier secrets new-key`) puis lancez `portier secrets rotate` (docs/secrets.md)."));
        }
    }
    for s in &f.at_rest.secrets {
        let state = match s.state {
            SecretState::Encrypted => t("encrypted", "chiffré"),
            SecretState::Clear => t("IN CLEAR", "EN CLAIR"),
            SecretState::Absent => t("absent", "absent"),
        };
        let _ = writeln!(o, "- {} (`{}`): {state}", s.what, s.location);
    }
    let _ = writeln!(
        o,
        "- {}\n",
        t(
            "The vendor CA key signs every technician certificate: whoever holds it can impersonate any vendor. Keep it on this host only.",
            "La clé de l'AC fournisseurs signe tous les certificats de techniciens : qui la détient peut se faire passer pour n'importe quel fournisseur. Ne la gardez que sur cet hôte."
        )
    );
    if !f.require_mfa.is_empty() {
        let _ = writeln!(
            o,
            "{} {}\n",
            t("Second factor required for:", "Second facteur exigé pour :"),
            f.require_mfa
                .iter()
                .map(|r| crate::rights::role_label(*r, lang))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }

    let _ = writeln!(o, "## 4. {}\n", t("File permissions", "Droits sur les fichiers"));
    let _ = writeln!(
        o,
        "```sh\nchown -R portier:portier {} \nchmod 0700 {}",
        parent(&f.config),
        parent(&f.config)
    );
    for k in &f.key_files {
        let _ = writeln!(o, "chmod 0600 {k}");
    }
    let _ = writeln!(o, "chmod 0600 {}\n```\n", f.config);

    let _ = writeln!(o, "## 5. {}\n", t("Service", "Service"));
    let _ = writeln!(
        o,
        "{}\n\n```sh\ninstall -m 0644 deploy/portier.service /etc/systemd/system/portier.service\nsystemctl daemon-reload\nsystemctl enable --now portier\n```\n",
        t(
            "Install the hardened unit shipped as deploy/portier.service (own user, read-only system, no new privileges; master key as an encrypted systemd credential):",
            "Installez l'unité durcie fournie dans deploy/portier.service (utilisateur dédié, système en lecture seule, pas de nouveaux privilèges ; clé maîtresse en credential systemd chiffré) :"
        )
    );

    let _ = writeln!(o, "## 6. {}\n", t("Backups", "Sauvegardes"));
    if f.sqlite {
        let _ = writeln!(
            o,
            "{} `{}` {}\n",
            t("Back up the SQLite database", "Sauvegardez la base SQLite"),
            f.database,
            t("with `sqlite3 FILE \".backup DEST\"` (consistent while serving), and the configuration directory. Keep the master key's copy apart from them.", "avec `sqlite3 FICHIER \".backup DEST\"` (cohérent en service), ainsi que le répertoire de configuration. Gardez la copie de la clé maîtresse à part.")
        );
    } else {
        let _ = writeln!(
            o,
            "{} `{}` {}\n",
            t("Back up the PostgreSQL database", "Sauvegardez la base PostgreSQL"),
            f.database,
            t("with `pg_dump` or continuous archiving, and the configuration directory. Keep the master key's copy apart from them.", "avec `pg_dump` ou l'archivage continu, ainsi que le répertoire de configuration. Gardez la copie de la clé maîtresse à part.")
        );
    }
    let _ = writeln!(
        o,
        "{}",
        t(
            "Then check the commissioning with `portier check`.",
            "Vérifiez ensuite la mise en service avec `portier check`."
        )
    );
    o
}

fn parent(path: &str) -> String {
    std::path::Path::new(path)
        .parent()
        .map(|p| p.display().to_string())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| ".".into())
}

/// The procedures: safe mode, degraded mode, incidents, maintenance, disposal.
pub fn procedures(f: &Facts, lang: Lang) -> String {
    let t = |en, fr| sel(lang, en, fr);
    let c = &f.config;
    let mut o = String::new();
    let _ = writeln!(o, "# {}\n", t("Procedures", "Procédures"));

    let _ = writeln!(
        o,
        "## 1. {}\n",
        t("Safe mode (lockdown)", "Mise en sécurité (verrouillage)")
    );
    let _ = writeln!(o, "**{}**\n", t("How to trigger", "Déclenchement"));
    let _ = writeln!(
        o,
        "- API: `POST https://{}/api/v1/lockdown` {}",
        f.api,
        t("(admin or security role)", "(rôle admin ou sécurité)")
    );
    let _ = writeln!(
        o,
        "- {}",
        t(
            "Console: Security home, « Lock down »",
            "Console : accueil Sécurité, « Verrouiller »"
        )
    );
    let _ = writeln!(
        o,
        "- {}: `portier lockdown on --reason \"…\" --config {c}` — {} `{}`{}\n",
        t("On the server", "Sur le serveur"),
        t("writes", "écrit"),
        f.lockdown_file,
        t(
            ", followed within a second even with the database down",
            ", suivi en une seconde même base arrêtée"
        )
    );
    let _ = writeln!(
        o,
        "**{}** {}\n",
        t("What keeps working:", "Ce qui continue de fonctionner :"),
        t(
            "every tunnel is cut and new ones are refused; the admin API, the console, the audit trail and the notifications keep working, so the incident can be investigated.",
            "tous les tunnels sont coupés et les nouveaux refusés ; l'API d'administration, la console, la piste d'audit et les notifications continuent de fonctionner pour instruire l'incident."
        )
    );
    let _ = writeln!(
        o,
        "**{}** `portier lockdown off --reason \"…\" --config {c}` {}\n",
        t("How to resume:", "Reprise :"),
        t(
            "(needs the database), or `DELETE /api/v1/lockdown`.",
            "(nécessite la base), ou `DELETE /api/v1/lockdown`."
        )
    );
    let _ = writeln!(
        o,
        "**{}** {}\n",
        t("Alerts:", "Alertes :"),
        if f.notify_configured {
            t(
                "the lockdown and its lifting are audited and sent to the configured webhooks and syslog.",
                "le verrouillage et sa levée sont audités et envoyés aux webhooks et au syslog configurés.",
            )
        } else {
            t("the lockdown is audited; no webhook or syslog is configured, so nobody is notified — configure `[notify]`.", "le verrouillage est audité ; aucun webhook ni syslog n'est configuré, personne n'est donc prévenu — configurez `[notify]`.")
        }
    );

    let _ = writeln!(o, "## 2. {}\n", t("Degraded mode", "Mode dégradé"));
    let _ = writeln!(
        o,
        "- **{}** {}",
        t("Database unreachable:", "Base injoignable :"),
        t(
            "Portier fails closed: no new tunnel is admitted on stale data (`[cluster] on_stale`), a lockdown still works through the lockdown file, and nodes resume by themselves when the database is back.",
            "Portier échoue fermé : aucun nouveau tunnel n'est admis sur des données périmées (`[cluster] on_stale`), le verrouillage fonctionne toujours par le fichier de verrouillage, et les nœuds reprennent seuls au retour de la base."
        )
    );
    let _ = writeln!(
        o,
        "- **{}** {}\n",
        t("A node compromised:", "Un nœud compromis :"),
        t(
            "lock down; stop the node; revoke every API token and technician certificate; rotate the vendor CA (new CA key and certificate, `portier secrets rotate` for the master key) and re-issue technicians' certificates; reinstall the node from a verified release.",
            "verrouillez ; arrêtez le nœud ; révoquez tous les jetons d'API et certificats de techniciens ; renouvelez l'AC fournisseurs (nouvelle clé et nouveau certificat, `portier secrets rotate` pour la clé maîtresse) et réémettez les certificats des techniciens ; réinstallez le nœud depuis une version vérifiée."
        )
    );

    let _ = writeln!(o, "## 3. {}\n", t("Incident handling", "Traitement des incidents"));
    let _ = writeln!(
        o,
        "{}\n",
        t(
            "Who is notified: the hospital's receivers of the audit events (webhooks, syslog), then, for each vendor involved, its security contact as recorded in Portier. Portier records the contact but does not write to it itself: the security team informs it.",
            "Qui est prévenu : les destinataires des événements d'audit de l'hôpital (webhooks, syslog), puis, pour chaque fournisseur concerné, son contact sécurité enregistré dans Portier. Portier enregistre ce contact mais ne lui écrit pas lui-même : l'équipe sécurité l'informe."
        )
    );
    if f.contacts.is_empty() {
        let _ = writeln!(o, "- {}", t("no vendor registered", "aucun fournisseur enregistré"));
    }
    for (vendor, contact) in &f.contacts {
        match contact {
            Some(c) => {
                let _ = writeln!(o, "- {vendor}: {c}");
            }
            None => {
                let _ = writeln!(
                    o,
                    "- {vendor}: **{}**",
                    t(
                        "no security contact recorded — add one",
                        "aucun contact sécurité enregistré — à compléter"
                    )
                );
            }
        }
    }
    let _ = writeln!(
        o,
        "\n{}\n",
        t(
            "Collect the facts with `portier export` (evidence bundle) and `portier timeline`, and verify the audit trail with `portier audit verify`.",
            "Rassemblez les faits avec `portier export` (dossier de preuves) et `portier timeline`, et vérifiez la piste d'audit avec `portier audit verify`."
        )
    );

    let _ = writeln!(o, "## 4. {}\n", t("Maintenance of Portier", "Maintenance de Portier"));
    let _ = writeln!(
        o,
        "{}\n\n```sh\ndeploy/verify-release.sh --pubkey portier-release.pub portier-VERSION/\nsystemctl stop portier\nportier migrate --config {c}\nsystemctl start portier\n```\n",
        t(
            "As docs/maintenance.md details: verify the release's signature and SHA-256 checksums, back up, migrate, start; to roll back, reinstall the previous binary and restore the backup taken before migrating.",
            "Comme le détaille docs/maintenance.md : vérifiez la signature et les empreintes SHA-256 de la version, sauvegardez, migrez, démarrez ; pour revenir en arrière, réinstallez le binaire précédent et restaurez la sauvegarde faite avant la migration."
        )
    );

    let _ = writeln!(
        o,
        "## 5. {}\n",
        t("Secure disposal of data", "Effacement sécurisé des données")
    );
    let _ = writeln!(
        o,
        "`portier purge --before DATE --config {c}` {}",
        t(
            "removes personal data older than the retention period while keeping the audit chain verifiable, and records that it did. At end of life, also destroy the master key, the private keys and every backup.",
            "supprime les données personnelles plus anciennes que la durée de conservation en gardant la chaîne d'audit vérifiable, et l'enregistre. En fin de vie, détruisez aussi la clé maîtresse, les clés privées et toutes les sauvegardes."
        )
    );
    o
}
