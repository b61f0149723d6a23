//! The command line: `init`, `serve`, `migrate`, `account create`, `token list|create|revoke`,
//! `rights`…

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::domain::{Role, VendorId};
use crate::ops::{Actor, Ops};
use crate::pki;
use crate::store;

/// Portier: time-bounded, audited remote-maintenance tunnels for hospitals.
#[derive(Debug, Parser)]
#[command(name = "portier", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a development setup: PKI in DIR/certs, DIR/portier.toml, the SQLite
    /// database, and a bootstrap admin token (printed once). Refuses to overwrite.
    Init {
        /// Directory to create the setup in (configuration and PKI).
        #[arg(long)]
        dir: PathBuf,
        /// Where the node writes (the SQLite database). Defaults to DIR; a packaged
        /// install uses `--dir /etc/portier --state-dir /var/lib/portier`, since the
        /// systemd unit makes /etc read-only.
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Print `{"admin_token": …, "config": …}` instead of text.
        #[arg(long)]
        json: bool,
        /// Encrypt the private keys under the master key in this file (recorded
        /// as `[secrets] master_key_file`; keep it outside DIR). Without it, the
        /// key is taken from a systemd credential or PORTIER_MASTER_KEY; with
        /// none, the keys are written in clear (0600) and `init` says so.
        #[arg(long)]
        master_key_file: Option<PathBuf>,
    },
    /// Run the gateway (and the admin API) until Ctrl-C / SIGTERM.
    Serve {
        /// Configuration file.
        #[arg(long, env = "PORTIER_CONFIG", conflicts_with = "dev")]
        config: Option<PathBuf>,
        /// Quick start: create ./portier-dev on first run (as `init` does), then serve it.
        #[arg(long)]
        dev: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate {
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Personal API tokens: list, create (shown once), revoke.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Accounts: create one (with its first token, shown once).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// The audit trail.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Write an evidence bundle for auditors: sessions, windows and approvals,
    /// emergency grants, reports, the audit slice with its hashes, SHA256SUMS.
    Export {
        /// Start of the period (RFC 3339).
        #[arg(long)]
        since: chrono::DateTime<chrono::Utc>,
        /// End of the period (RFC 3339), exclusive.
        #[arg(long)]
        until: chrono::DateTime<chrono::Utc>,
        /// Directory to create (must be absent or empty).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Assess this deployment against the commissioning guide (docs/check.md):
    /// one line per point, OK / WARN / FAIL with the fix; exit status 1 on any FAIL.
    Check {
        /// Print the findings as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Print the network flow matrix generated from the configuration and database.
    Flows {
        /// `md` (default), `csv` or `json`.
        #[arg(long, default_value = "md", value_parser = ["md", "csv", "json"])]
        format: String,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Print the software bill of materials of this binary: every crate compiled
    /// into it with its version, licence and checksum (recorded at build time), and
    /// the container image's Debian packages when the dpkg status file is given.
    Sbom {
        /// `cyclonedx` (CycloneDX 1.5 JSON, default), or the third-party software
        /// table as `md`, `html` or `json`.
        #[arg(long, default_value = "cyclonedx", value_parser = ["cyclonedx", "md", "html", "json"])]
        format: String,
        /// Language of the table (`md`, `html`): `en` or `fr`.
        #[arg(long, default_value = "en", value_parser = ["en", "fr"])]
        lang: String,
        /// A dpkg status file whose installed packages are listed too (the image
        /// sets it to /var/lib/dpkg/status); ignored when the file does not exist.
        #[arg(long, env = "PORTIER_DPKG_STATUS")]
        dpkg_status: Option<PathBuf>,
    },
    /// Secrets at rest (docs/secrets.md): make a master key, encrypt a
    /// configuration value, re-encrypt everything under a new key, show what is
    /// encrypted.
    Secrets {
        #[command(subcommand)]
        command: SecretsCommand,
    },
    /// Secure disposal: erase or delete the personal data older than a cut-off
    /// (session addresses and certificate subjects, window reasons, report
    /// texts, sign-in records, console sessions, settled notifications, audit
    /// events), keeping the audit chain verifiable, and record it
    /// (`data.purged`). See docs/retention.md.
    Purge {
        /// The cut-off (RFC 3339 or YYYY-MM-DD, UTC): at least `[retention]
        /// min_days` (default 365) in the past.
        #[arg(long, value_parser = cli_instant)]
        before: chrono::DateTime<chrono::Utc>,
        /// Print what would go; change and record nothing.
        #[arg(long)]
        dry_run: bool,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// The incident timeline of a vendor or a device: every recorded event, in
    /// time order (windows and decisions, grants, sessions with bytes, denials,
    /// reports).
    Timeline {
        /// The vendor (id or name).
        #[arg(long, conflicts_with = "device", required_unless_present = "device")]
        vendor: Option<String>,
        /// The device (id or name).
        #[arg(long)]
        device: Option<String>,
        /// From (RFC 3339 or YYYY-MM-DD); default 30 days before --until. The
        /// period is 366 days at most.
        #[arg(long, value_parser = cli_instant)]
        since: Option<chrono::DateTime<chrono::Utc>>,
        /// To, exclusive (RFC 3339 or YYYY-MM-DD); default now.
        #[arg(long, value_parser = cli_instant)]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// Print the timeline as JSON (as `GET /api/v1/timeline` does).
        #[arg(long)]
        json: bool,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Lock down (cut every tunnel, refuse new ones) or lift it, from the server
    /// itself, for when the API cannot be reached. `on` writes the node's lockdown
    /// file (`gateway.lockdown_file`, default `lockdown` next to the configuration):
    /// running nodes using this configuration follow it within a second, even with
    /// the database down; it is then stored in the database (best effort; the node
    /// stores it itself once the database is back). `off` needs the database, then
    /// removes the file.
    Lockdown {
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: String,
        /// Why (recorded in the audit trail and shown by GET /api/v1/lockdown).
        #[arg(long)]
        reason: String,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Write the security dossier (docs/dossier.md) into DIR: rights per profile,
    /// authentication and cryptography, flow matrix, architecture schema,
    /// third-party software, installation guide and procedures, with an index.
    Dossier {
        /// Directory to create (must be absent or empty).
        #[arg(long)]
        out: PathBuf,
        /// `en` or `fr`.
        #[arg(long, default_value = "en", value_parser = ["en", "fr"])]
        lang: String,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Print the rights per profile: every function (API route, command,
    /// console page) × role, generated from the authorization table the code
    /// enforces; the administrator's advanced functions marked. Needs no
    /// configuration: the table is part of the program.
    Rights {
        /// `en` or `fr`.
        #[arg(long, default_value = "en", value_parser = ["en", "fr"])]
        lang: String,
        /// `md` (default), `html` (one self-contained page) or `json`.
        #[arg(long, default_value = "md", value_parser = ["md", "html", "json"])]
        format: String,
    },
}

/// `portier secrets …`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Make a master key (32 random bytes, base64): printed, or written to
    /// --out owner-only (never overwriting a file).
    NewKey {
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Read a value on standard input and print it encrypted under the master
    /// key for the field it goes in (`enc:v2:…`), to paste into portier.toml as
    /// a webhook secret or the directory's bind password. The value decrypts in
    /// that field only.
    Encrypt {
        /// The field: notify.webhooks.secret (any webhook; `notify.webhooks[N].secret`
        /// is taken too) or auth.ldap.bind_password.
        #[arg(long, value_parser = parse_config_field)]
        field: crate::secrets::envelope::ConfigField,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Re-encrypt the private keys, the configuration's encrypted values and
    /// the database's TOTP secrets under a new master key (--new-key-file, or
    /// PORTIER_NEW_MASTER_KEY). Secrets in clear are encrypted too, legacy
    /// (`enc:v1:`) envelopes upgraded. Refused while a node runs on the
    /// database: stop them all, rotate, then start them with the new key.
    Rotate {
        /// The new master key's file (owner-only, as `[secrets] master_key_file`).
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Show how each secret is stored (encrypted or in clear) and where the
    /// master key comes from, as JSON.
    Status {
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
}

/// A configuration field that holds a secret, as `secrets encrypt --field` takes it.
fn parse_config_field(s: &str) -> Result<crate::secrets::envelope::ConfigField, String> {
    use crate::secrets::envelope::ConfigField;
    ConfigField::parse(s).ok_or_else(|| {
        let names: Vec<&str> = ConfigField::ALL.iter().map(|f| f.name()).collect();
        format!("not a secret field of portier.toml; one of: {}", names.join(", "))
    })
}

/// A date as the command line takes it: RFC 3339, or a day (`2025-01-31`,
/// midnight UTC).
fn cli_instant(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| format!("{s:?} is neither RFC 3339 (2025-01-31T00:00:00Z) nor a day (2025-01-31)"))
}

/// `portier audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute the hash chain; exit status 1 if it is broken.
    Verify {
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
}

/// `portier token …`
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// List tokens by prefix, with their last use and expiry (every account's,
    /// or one account's with --user).
    List {
        /// Only this account's tokens (its name).
        #[arg(long)]
        user: Option<String>,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Create a personal token for an existing account (`--user NAME`) and print
    /// it (shown once). The older form `--role R --name N [--vendor V]` still
    /// creates an account with its first token: an alias of `account create`.
    Create {
        /// The token's name (with --user), or the new account's (with --role).
        #[arg(long)]
        name: String,
        /// The account the token is for (its name).
        #[arg(long, conflicts_with_all = ["role", "vendor"], required_unless_present = "role")]
        user: Option<String>,
        /// Days until the token expires (default `[auth] token_days`).
        #[arg(long, requires = "user")]
        days: Option<i64>,
        /// Alias of `account create`: the new account's role.
        #[arg(long)]
        role: Option<String>,
        /// Alias of `account create`: the vendor of a `vendor` account.
        #[arg(long, requires = "role")]
        vendor: Option<String>,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
    /// Revoke a token by its id (see `token list`): it stops at once on every node.
    Revoke {
        id: String,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
}

/// `portier account …`
#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its first token (shown once; it expires after
    /// `[auth] token_days`).
    Create {
        /// admin, security, auditor or vendor.
        #[arg(long)]
        role: String,
        /// Account name (unique).
        #[arg(long)]
        name: String,
        /// The vendor a `vendor` account is scoped to.
        #[arg(long)]
        vendor: Option<String>,
        /// The person's e-mail address.
        #[arg(long)]
        email: Option<String>,
        #[arg(long, env = "PORTIER_CONFIG", default_value = "portier.toml")]
        config: PathBuf,
    },
}

/// Directory `serve --dev` uses.
pub const DEV_DIR: &str = "portier-dev";

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init {
            dir,
            state_dir,
            json,
            master_key_file,
        } => {
            let created = init(&dir, state_dir.as_deref(), master_key_file.as_deref()).await?;
            print_init(&created, json)?;
            Ok(())
        }
        Command::Serve { config, dev } => {
            let config = match (config, dev) {
                (_, true) => {
                    let dir = PathBuf::from(DEV_DIR);
                    if !dir.join("portier.toml").exists() {
                        let created = init(&dir, None, None).await?;
                        print_init(&created, false)?;
                    }
                    dir.join("portier.toml")
                }
                (Some(c), false) => c,
                (None, false) => bail!("give --config FILE, or --dev for the development quick start"),
            };
            let settings = load(&config)?;
            crate::telemetry::init(settings.log.format, &settings.log.filter);
            let app = App::start(&settings).await?;
            tracing::info!(gateway = %app.gateway_addr, api = %app.api_addr, "portier serving");
            app.run_until_signal().await;
            Ok(())
        }
        Command::Lockdown { state, reason, config } => {
            let settings = load(&config)?;
            let reason = reason.trim();
            if reason.is_empty() {
                bail!("--reason must not be empty");
            }
            lockdown(&settings, state == "on", reason).await
        }
        Command::Audit {
            command: AuditCommand::Verify { config },
        } => {
            use std::io::{IsTerminal, Write};
            let settings = load(&config)?;
            let store = store::connect(&settings.database.url).await?;
            let tty = std::io::stderr().is_terminal();
            let v = crate::audit::verify_store(store.as_ref(), |n| {
                if tty {
                    let _ = write!(std::io::stderr(), "\rverifying… {n} events");
                    let _ = std::io::stderr().flush();
                }
            })
            .await?;
            if tty {
                eprintln!();
            }
            println!("{}", serde_json::to_string(&v)?);
            if !v.valid {
                bail!(
                    "the audit trail is broken at sequence number {}",
                    v.first_invalid_seq.unwrap_or_default()
                );
            }
            Ok(())
        }
        Command::Export {
            since,
            until,
            out,
            config,
        } => {
            if until <= since {
                bail!("--until must be after --since");
            }
            let settings = load(&config)?;
            let store = store::connect(&settings.database.url).await?;
            let files = crate::export::export(store.as_ref(), since, until, &out).await?;
            println!("wrote {} ({})", out.display(), files.join(", "));
            Ok(())
        }
        Command::Check { json, config } => {
            let facts = crate::check::gather(load(&config)?, SystemClock.now()).await;
            let findings = crate::check::assess(&facts);
            if json {
                println!("{}", serde_json::to_string_pretty(&findings)?);
            } else {
                print!("{}", crate::check::to_text(&findings));
            }
            if crate::check::worst(&findings) == crate::check::Status::Fail {
                bail!("the deployment fails the commissioning checks (docs/check.md)");
            }
            Ok(())
        }
        Command::Flows { format, config } => {
            let settings = load(&config)?;
            let store = store::connect(&settings.database.url).await?;
            let node = crate::dossier::node_flows(&settings);
            let rows = crate::flows::matrix(&node, &store.list_vendors().await?, &store.list_devices().await?);
            match format.as_str() {
                "csv" => print!("{}", crate::flows::to_csv(&rows)?),
                "json" => println!("{}", serde_json::to_string_pretty(&rows)?),
                _ => print!("{}", crate::flows::to_markdown(&rows)),
            }
            Ok(())
        }
        Command::Sbom {
            format,
            lang,
            dpkg_status,
        } => {
            let crates = crate::sbom::crates()?;
            let os = match &dpkg_status {
                Some(path) => crate::sbom::os_packages(path)?,
                None => None,
            };
            let lang = crate::ops::Lang::parse(&lang).unwrap_or(crate::ops::Lang::En);
            match format.as_str() {
                "md" => print!("{}", crate::sbom::third_party(&crates, os.as_deref()).to_markdown(lang)),
                "html" => println!("{}", crate::sbom::third_party(&crates, os.as_deref()).to_html(lang)),
                "json" => println!("{}", crate::sbom::third_party(&crates, os.as_deref()).to_json()?),
                _ => {
                    let bom = crate::sbom::cyclonedx(&crates, os.as_deref(), uuid::Uuid::new_v4(), SystemClock.now());
                    println!("{}", serde_json::to_string_pretty(&bom)?);
                }
            }
            Ok(())
        }
        Command::Purge {
            before,
            dry_run,
            config,
        } => {
            let ops = cli_store_ops(&config).await?;
            let input = crate::ops::PurgeInput { before, dry_run };
            let c = ops.purge(&Actor::cli(&cli_user()), &input).await?;
            println!("{}", serde_json::to_string_pretty(&c)?);
            if dry_run {
                eprintln!("dry run: nothing was changed");
            }
            Ok(())
        }
        Command::Timeline {
            vendor,
            device,
            since,
            until,
            json,
            config,
        } => {
            let ops = cli_store_ops(&config).await?;
            timeline(&ops, vendor, device, since, until, json).await
        }
        Command::Migrate { config } => {
            let settings = load(&config)?;
            let store = store::connect(&settings.database.url).await?;
            store.migrate().await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Account {
            command:
                AccountCommand::Create {
                    role,
                    name,
                    vendor,
                    email,
                    config,
                },
        } => create_account(&config, &role, &name, vendor, email.as_deref()).await,
        Command::Token { command } => token_command(command).await,
        Command::Rights { lang, format } => {
            let lang =
                crate::ops::Lang::parse(&lang).with_context(|| format!("unknown language {lang:?} (en or fr)"))?;
            let format = crate::rights::Format::parse(&format)
                .with_context(|| format!("unknown format {format:?} (md, html or json)"))?;
            print!("{}", crate::rights::document(crate::rights::TABLE, lang, format));
            Ok(())
        }
        Command::Secrets { command } => secrets_command(command).await,
        Command::Dossier { out, lang, config } => {
            let lang =
                crate::ops::Lang::parse(&lang).with_context(|| format!("unknown language {lang:?} (en or fr)"))?;
            let written = crate::dossier::write(&config, &out, lang).await?;
            if let Some(note) = &written.svg_note {
                eprintln!("note: architecture.svg not rendered: {note}");
            }
            println!("wrote {} ({} files, index.md)", out.display(), written.files.len());
            Ok(())
        }
    }
}

/// `portier secrets …`.
async fn secrets_command(command: SecretsCommand) -> anyhow::Result<()> {
    use crate::secrets::{master_key, AtRest};
    match command {
        SecretsCommand::NewKey { out } => {
            let key = master_key::generate();
            match out {
                Some(path) => {
                    pki::write_private(&path, &zeroize::Zeroizing::new(format!("{}\n", key.as_str())))?;
                    let id =
                        crate::secrets::MasterKey::parse(&key, crate::secrets::KeySource::File { path: path.clone() })?
                            .id();
                    println!("master key {id} written to {} (0600)", path.display());
                }
                None => println!("{}", key.as_str()),
            }
            Ok(())
        }
        SecretsCommand::Encrypt { field, config } => {
            use std::io::Read;
            let at_rest = if config.exists() {
                AtRest::locate(&load(&config)?.secrets)?
            } else {
                AtRest::locate(&Default::default())?
            };
            let Some(key) = at_rest.key() else {
                bail!(
                    "no master key: give it as the systemd credential {}, in {}, or with [secrets] master_key_file in {}",
                    master_key::CREDENTIAL_NAME,
                    master_key::ENV_VAR,
                    config.display()
                );
            };
            let mut value = zeroize::Zeroizing::new(String::new());
            std::io::stdin()
                .read_to_string(&mut value)
                .context("reading the value on standard input")?;
            let value = value.strip_suffix('\n').unwrap_or(&value);
            let value = value.strip_suffix('\r').unwrap_or(value);
            if value.is_empty() {
                bail!("nothing to encrypt: give the value on standard input");
            }
            let sealed =
                crate::secrets::envelope::seal_value(key, crate::secrets::envelope::Purpose::Config(field), value)?;
            println!("{sealed}");
            Ok(())
        }
        SecretsCommand::Rotate {
            new_key_file,
            json,
            config,
        } => rotate_secrets(&config, new_key_file.as_deref(), json).await,
        SecretsCommand::Status { config } => {
            let settings = load(&config)?;
            let at_rest = AtRest::locate(&settings.secrets)?;
            let store = store::connect(&settings.database.url).await?;
            let report = crate::secrets::describe(&settings, &at_rest, Some(store.as_ref())).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            Ok(())
        }
    }
}

/// `portier secrets rotate`.
async fn rotate_secrets(config: &Path, new_key_file: Option<&Path>, json: bool) -> anyhow::Result<()> {
    use crate::secrets::{master_key, AtRest};
    let settings = load(config)?;
    let current = AtRest::locate(&settings.secrets).context("finding the current master key")?;
    let new = match (
        new_key_file,
        std::env::var(master_key::NEW_ENV_VAR).ok().map(zeroize::Zeroizing::new),
    ) {
        (Some(path), _) => master_key::read_key_file(path).context("the new master key")?,
        (None, Some(text)) => crate::secrets::MasterKey::parse(
            &text,
            crate::secrets::KeySource::Environment {
                variable: master_key::NEW_ENV_VAR.to_owned(),
            },
        )?,
        (None, None) => bail!(
            "give the new master key with --new-key-file FILE or {} (make one with `portier secrets new-key`)",
            master_key::NEW_ENV_VAR
        ),
    };
    if current.key().is_some_and(|k| k.id() == new.id()) {
        bail!("the new master key is the current one ({})", new.id());
    }
    let store = store::connect(&settings.database.url).await?;
    store.migrate().await?;
    let actor = format!("cli:{}", cli_user());
    let report =
        crate::secrets::rotate::rotate(config, &settings, &current, &new, Some(store.as_ref()), &actor).await?;
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!("Re-encrypted under master key {}:", report.new_key);
        for (path, was) in &report.key_files {
            println!(
                "  {} (was {})",
                path.display(),
                serde_json::to_string(was)?.trim_matches('"')
            );
        }
        println!("  {} encrypted value(s) of {}", report.config_values, config.display());
        if let Some(t) = report.totp {
            println!(
                "  {} TOTP secret(s) in the database ({} rewritten)",
                t.encrypted, t.rewritten
            );
        }
    }
    for name in &report.clear_config_values {
        eprintln!(
            "warning: {name} is still in clear in {}: encrypt it with `portier secrets encrypt --field {name}` and paste the result",
            config.display()
        );
    }
    match current.key() {
        Some(old) => eprintln!(
            "Now replace the master key {} ({}) with the new one and restart the nodes: the old key no longer decrypts anything.",
            old.id(),
            old.source()
        ),
        None => eprintln!(
            "Now give the nodes the new master key (systemd credential {}, {} or [secrets] master_key_file) and restart them.",
            master_key::CREDENTIAL_NAME,
            master_key::ENV_VAR
        ),
    }
    Ok(())
}

/// `portier token …`.
async fn token_command(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            role: Some(role),
            name,
            vendor,
            config,
            ..
        } => create_account(&config, &role, &name, vendor, None).await,
        TokenCommand::Create {
            user: Some(user),
            name,
            days,
            config,
            ..
        } => {
            let ops = cli_store_ops(&config).await?;
            let owner = account_named(&ops, &user).await?;
            let created = ops
                .create_token(&Actor::cli(&cli_user()), Some(&owner), &name, days)
                .await
                .with_context(|| format!("creating a token for {user:?}"))?;
            println!("{}", created.secret);
            Ok(())
        }
        TokenCommand::Create { .. } => {
            bail!("give --user NAME (a token for an account) or --role ROLE (a new account)")
        }
        TokenCommand::List { user, config } => {
            let ops = cli_store_ops(&config).await?;
            let who = Actor::cli(&cli_user());
            let users = ops.users(&who).await?;
            let tokens = match user {
                Some(name) => ops.tokens(&who, Some(&account_named(&ops, &name).await?)).await?,
                None => ops.all_tokens(&who).await?,
            };
            let now = SystemClock.now();
            let name_of = |id: &crate::domain::UserId| {
                users
                    .iter()
                    .find(|u| u.id == *id)
                    .map_or_else(|| id.to_string(), |u| u.name.clone())
            };
            let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
                t.map_or_else(|| "-".to_owned(), |t| t.format("%Y-%m-%d %H:%M").to_string())
            };
            println!("ID\tPREFIX\tNAME\tACCOUNT\tSTATE\tEXPIRES\tLAST USED");
            for t in &tokens {
                let state = if t.revoked_at.is_some() {
                    "revoked"
                } else if t.live_at(now) {
                    "live"
                } else {
                    "expired"
                };
                println!(
                    "{}\t{}…\t{}\t{}\t{state}\t{}\t{}",
                    t.id,
                    t.prefix,
                    t.name,
                    name_of(&t.user_id),
                    t.expires_at.map_or_else(|| "never".to_owned(), |e| when(Some(e))),
                    when(t.last_used_at),
                );
            }
            Ok(())
        }
        TokenCommand::Revoke { id, config } => {
            let ops = cli_store_ops(&config).await?;
            let t = ops
                .revoke_token(&Actor::cli(&cli_user()), &crate::domain::TokenId(id.clone()))
                .await
                .with_context(|| format!("revoking token {id}"))?;
            println!("token {} ({}…, {}) revoked", t.id, t.prefix, t.name);
            Ok(())
        }
    }
}

/// `portier timeline`: resolves names to ids, then prints one line per event
/// (or the JSON the API answers).
async fn timeline(
    ops: &Ops,
    vendor: Option<String>,
    device: Option<String>,
    since: Option<chrono::DateTime<chrono::Utc>>,
    until: Option<chrono::DateTime<chrono::Utc>>,
    json: bool,
) -> anyhow::Result<()> {
    let who = Actor::cli(&cli_user());
    if let Some(since) = since {
        let until = until.unwrap_or_else(|| SystemClock.now());
        if until - since > chrono::Duration::days(crate::ops::MAX_INCIDENT_DAYS) {
            bail!(
                "--since {} and --until {} are more than {} days apart: ask for one year at most at a time",
                since.to_rfc3339(),
                until.to_rfc3339(),
                crate::ops::MAX_INCIDENT_DAYS
            );
        }
    }
    let vendor_id = match vendor {
        Some(v) => Some(
            match ops.store.list_vendors().await?.into_iter().find(|x| x.name == v) {
                Some(found) => found.id,
                None => VendorId(v),
            },
        ),
        None => None,
    };
    let device_id = match device {
        Some(d) => Some(
            match ops
                .store
                .list_devices()
                .await?
                .into_iter()
                .find(|x| x.name.as_str() == d)
            {
                Some(found) => found.id,
                None => crate::domain::DeviceId(d),
            },
        ),
        None => None,
    };
    let q = crate::ops::IncidentQuery {
        vendor_id,
        device_id,
        since,
        until,
        limit: None,
    };
    let t = ops.incident_timeline(&who, &q).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&t)?);
        return Ok(());
    }
    println!(
        "# {} {} from {} to {}: {} events",
        if t.vendor_id.is_some() { "vendor" } else { "device" },
        t.vendor_id
            .as_ref()
            .map(|v| v.to_string())
            .or_else(|| t.device_id.as_ref().map(|d| d.to_string()))
            .unwrap_or_default(),
        t.since.to_rfc3339(),
        t.until.to_rfc3339(),
        t.entries.len()
    );
    for e in &t.entries {
        println!("{}", timeline_line(e));
    }
    Ok(())
}

/// One timeline entry on one line: when, what, on what, by whom, and the facts
/// that matter for its kind.
fn timeline_line(e: &crate::ops::IncidentEntry) -> String {
    let at = e.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let mut line = match e.seq {
        Some(seq) => format!("{at}  #{seq}  {}  {}  by {}", e.event, e.object, e.actor),
        None => format!("{at}  (record)  {}  {}", e.event, e.object),
    };
    if e.outcome != "success" {
        line.push_str(&format!("  ({})", e.outcome));
    }
    if let Some(s) = &e.session {
        line.push_str(&format!(
            "  device {} technician {} from {}  {} bytes from vendor, {} to vendor",
            s.device_id, s.technician_id, s.source_ip, s.bytes_from_vendor, s.bytes_to_vendor
        ));
        match (&s.ended_at, &s.end_reason) {
            (Some(end), Some(reason)) => line.push_str(&format!(
                "  ended {} ({})",
                end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                reason.as_str()
            )),
            _ => line.push_str("  open"),
        }
    } else if let Some(w) = &e.window_id {
        if w.as_str() != e.object {
            line.push_str(&format!("  window {w}"));
        }
    }
    let d = &e.details;
    for key in ["reason", "verdict", "outcome", "source_ip", "ends_at"] {
        if let Some(v) = d.get(key).filter(|v| !v.is_null()) {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            // Escaped: recorded text (a denial's SNI) must not drive the terminal.
            line.push_str(&format!("  {key}={}", v.escape_debug()));
        }
    }
    line
}

/// The use cases on the configured database, migrated.
async fn cli_store_ops(config: &Path) -> anyhow::Result<Ops> {
    let settings = load(config)?;
    // The key if this shell has it (TOTP secrets are sealed with it); its
    // configuration values stay sealed: no command here uses them, and an
    // operator's shell usually lacks the service's systemd credential.
    let at_rest = crate::secrets::AtRest::locate(&settings.secrets).context("finding the master key")?;
    let store = store::connect(&settings.database.url).await?;
    store.migrate().await?;
    Ok(cli_ops(&settings, store, at_rest))
}

/// The id of the account named `name`.
async fn account_named(ops: &Ops, name: &str) -> anyhow::Result<crate::domain::UserId> {
    ops.users(&Actor::cli(&cli_user()))
        .await?
        .into_iter()
        .find(|u| u.name == name)
        .map(|u| u.id)
        .with_context(|| format!("no account named {name:?}"))
}

/// `portier account create` (and its alias `token create --role`).
async fn create_account(
    config: &Path,
    role: &str,
    name: &str,
    vendor: Option<String>,
    email: Option<&str>,
) -> anyhow::Result<()> {
    let role: Role = role
        .parse()
        .map_err(|e| anyhow::anyhow!("{e} (expected admin, security, auditor or vendor)"))?;
    let vendor_id = vendor.map(VendorId);
    if role == Role::Vendor && vendor_id.is_none() {
        bail!("a vendor account needs --vendor ID");
    }
    let ops = cli_store_ops(config).await?;
    let ttl = chrono::Duration::days(ops.rules.token_days);
    let created = ops
        .create_account(&Actor::cli(&cli_user()), name, role, vendor_id, email, ttl)
        .await
        .with_context(|| format!("creating account {name:?}"))?;
    println!("{}", created.token);
    Ok(())
}

/// `portier lockdown on|off`. On: the lockdown file first (running nodes using
/// this configuration follow it within a second, database or not), then the
/// database, best effort. Off: the database first (it must be reachable), then
/// the file is removed.
async fn lockdown(settings: &Settings, active: bool, reason: &str) -> anyhow::Result<()> {
    let file = &settings.gateway.lockdown_file;
    let now = crate::audit::truncate_micros(SystemClock.now());
    let actor = format!("cli:{}", std::env::var("USER").unwrap_or_else(|_| "unknown".into()));
    let state = crate::store::LockdownState {
        active,
        reason: Some(reason.to_owned()),
        set_by: Some(actor.clone()),
        set_at: Some(now),
    };
    if active {
        crate::guard::LockdownFile {
            reason: reason.to_owned(),
            set_by: actor.clone(),
            set_at: now,
        }
        .write(file)
        .with_context(|| format!("writing the lockdown file {}", file.display()))?;
        println!(
            "lockdown on: {} written; nodes using this configuration cut every tunnel and refuse new ones within a second",
            file.display()
        );
        let stored = tokio::time::timeout(LOCKDOWN_DB_WAIT, store_lockdown(settings, &state))
            .await
            .unwrap_or_else(|_| Err(anyhow::anyhow!("no answer within {} s", LOCKDOWN_DB_WAIT.as_secs())));
        match stored {
            Ok(()) => println!("stored in the database: every node follows"),
            Err(e) => eprintln!(
                "warning: not stored in the database ({e:#}); the node reading {} stays locked down and stores the lockdown itself once the database is back",
                file.display()
            ),
        }
        return Ok(());
    }
    store_lockdown(settings, &state)
        .await
        .context("lifting a lockdown needs the database")?;
    match std::fs::remove_file(file) {
        Ok(()) => println!("lockdown off: stored in the database; {} removed", file.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => println!("lockdown off: stored in the database"),
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                "stored in the database, but the lockdown file {} could not be removed: this node stays locked down",
                file.display()
            )
            })
        }
    }
    Ok(())
}

/// How long `lockdown on` waits for the database after the file is written.
const LOCKDOWN_DB_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// Stores the lockdown switch with its audit event, unless a later decision is stored.
async fn store_lockdown(settings: &Settings, state: &crate::store::LockdownState) -> anyhow::Result<()> {
    let store = store::connect(&settings.database.url).await?;
    store.migrate().await?;
    // No master key needed: a lockdown must work whatever state the secrets are in.
    cli_ops(settings, store, crate::secrets::AtRest::none())
        .store_cli_lockdown(&Actor::cli(&cli_user()), state)
        .await?;
    Ok(())
}

/// Who runs the command, for the audit trail (`cli:<user>`).
fn cli_user() -> String {
    std::env::var("USER").unwrap_or_else(|_| "unknown".into())
}

/// The use cases as the command line runs them: on the database, with no live
/// tunnel of its own (running nodes follow the change feed).
fn cli_ops(settings: &Settings, store: std::sync::Arc<dyn store::Store>, at_rest: crate::secrets::AtRest) -> Ops {
    let clock: crate::clock::SharedClock = std::sync::Arc::new(SystemClock);
    Ops {
        cache: std::sync::Arc::new(crate::admission::AdmissionCache::new(
            store.clone(),
            settings.policy_settings(),
            clock.clone(),
        )),
        store,
        registry: std::sync::Arc::new(crate::gateway::Registry::default()),
        clock,
        rules: crate::ops::Rules {
            at_rest,
            ..settings.api_limits()
        },
    }
}

fn load(path: &Path) -> anyhow::Result<Settings> {
    Settings::load(path).with_context(|| format!("loading {}", path.display()))
}

/// What `init` created.
#[derive(Debug, Clone, serde::Serialize)]
pub struct InitResult {
    pub admin_token: String,
    /// The bootstrap token expires then (`[auth] bootstrap_token_hours`), or
    /// earlier if revoked.
    pub admin_token_expires_at: Option<chrono::DateTime<chrono::Utc>>,
    pub config: PathBuf,
    /// Whether the private keys were written encrypted under a master key.
    pub keys_encrypted: bool,
    /// The master key's id and source (`None`: keys in clear).
    pub master_key: Option<String>,
}

fn print_init(r: &InitResult, json: bool) -> anyhow::Result<()> {
    if !r.keys_encrypted {
        eprintln!("{INIT_CLEAR_WARNING}");
    }
    if json {
        println!("{}", serde_json::to_string(r)?);
    } else {
        println!("Created {}", r.config.display());
        match &r.master_key {
            Some(k) => println!("Private keys: encrypted (AES-256-GCM) under {k}."),
            None => println!(
                "Private keys: NOT encrypted (in clear, owner-only 0600): no master key was given (docs/secrets.md)."
            ),
        }
        println!("Bootstrap admin token (shown once, keep it safe):");
        println!("{}", r.admin_token);
        if let Some(at) = r.admin_token_expires_at {
            println!(
                "It expires at {} ([auth] bootstrap_token_hours) or when revoked: create your own accounts and tokens with it, then revoke it (`portier token list`, `portier token revoke ID`).",
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            );
        }
    }
    Ok(())
}

/// What `init` says (on standard error) when it writes the keys in clear.
const INIT_CLEAR_WARNING: &str =
    "warning: no master key given (systemd credential portier-master-key, PORTIER_MASTER_KEY or --master-key-file): \
the private keys are written in clear (0600). Encrypt them later with `portier secrets rotate --new-key-file FILE`.";

/// Creates a development setup in `dir` (see `portier init --help`).
pub async fn init(dir: &Path, state_dir: Option<&Path>, master_key_file: Option<&Path>) -> anyhow::Result<InitResult> {
    // A file named on the command line wins over the environment: it is the
    // one the configuration will name.
    let master = match master_key_file {
        Some(file) => Some(crate::secrets::master_key::read_key_file(file)?),
        None => crate::secrets::master_key::locate(None, |n| std::env::var(n).ok())?,
    };
    if let Some(file) = master_key_file {
        let (file, dir) = (std::path::absolute(file)?, std::path::absolute(dir)?);
        if file.starts_with(&dir) {
            bail!(
                "the master key file {} is inside {}: keep it apart from the keys it protects (another directory, disk or a systemd credential)",
                file.display(),
                dir.display()
            );
        }
    }
    let config = dir.join("portier.toml");
    let certs = dir.join("certs");
    let db = state_dir.unwrap_or(dir).join("portier.db");
    for existing in [&config, &certs, &db] {
        if existing.exists() {
            bail!(
                "{} already exists: refusing to overwrite an existing setup",
                existing.display()
            );
        }
    }
    // Owner-only whatever the umask (the binary sets 0077 too): directories
    // 0700, the configuration and the database 0600, keys 0600 (pki).
    for d in [dir, &certs] {
        create_private_dir(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let config_text = match state_dir {
        None => DEV_CONFIG.to_owned(),
        Some(state) => {
            create_private_dir(state).with_context(|| format!("creating {}", state.display()))?;
            // Absolute, so the database stays in the state directory whatever the
            // configuration file's location.
            let state = std::path::absolute(state).with_context(|| format!("resolving {}", state.display()))?;
            let url = toml::Value::String(format!("sqlite://{}", state.join("portier.db").display()));
            let lockdown = toml::Value::String(state.join("lockdown").display().to_string());
            DEV_CONFIG
                .replace(DEV_DATABASE_LINE, &format!("url = {url}"))
                .replace("[gateway]\n", &format!("[gateway]\nlockdown_file = {lockdown}\n"))
        }
    };
    let config_text = match master_key_file {
        Some(file) => {
            let file = toml::Value::String(std::path::absolute(file)?.display().to_string());
            format!("{config_text}\n[secrets]\n# The master key private keys are encrypted under (docs/secrets.md).\nmaster_key_file = {file}\n")
        }
        None => format!("{config_text}\n[secrets]\n# The master key comes from a systemd credential (portier-master-key) or\n# PORTIER_MASTER_KEY; or name a file readable by the service only, kept\n# apart from the keys (another disk), e.g.:\n# master_key_file = \"/media/portier-keys/master.key\"\n"),
    };
    pki::generate_dev_pki_under(&certs, master.as_ref())?;
    pki::write_private(&config, &config_text)?;
    let settings = Settings::load(&config)?;
    precreate_sqlite_file(&settings.database.url)?;
    let store = store::connect(&settings.database.url).await?;
    store.migrate().await?;
    let at_rest = master.map_or_else(crate::secrets::AtRest::none, crate::secrets::AtRest::with_key);
    let master_key = at_rest
        .key()
        .map(|k| format!("master key {} from {}", k.id(), k.source()));
    let created = cli_ops(&settings, store, at_rest)
        .create_bootstrap_admin(&Actor::cli("init"), "bootstrap-admin")
        .await
        .context("creating the bootstrap admin account")?;
    Ok(InitResult {
        admin_token: created.token,
        admin_token_expires_at: created.expires_at,
        config,
        keys_encrypted: master_key.is_some(),
        master_key,
    })
}

/// The database line of [`DEV_CONFIG`], replaced when `init` is given a state directory.
const DEV_DATABASE_LINE: &str = "url = \"sqlite://portier.db\"";
/// Creates `dir` and its missing parents, owner-only (0700).
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Creates an SQLite database file 0600 before SQLite does, since SQLite gives
/// its WAL and shared-memory files the database file's mode.
fn precreate_sqlite_file(url: &str) -> anyhow::Result<()> {
    let Some(rest) = url.strip_prefix("sqlite://") else {
        return Ok(());
    };
    let file = rest.split_once('?').map_or(rest, |(f, _)| f);
    if file.is_empty() || file == ":memory:" || Path::new(file).exists() {
        return Ok(());
    }
    pki::write_private(Path::new(file), "")?;
    Ok(())
}

/// The development configuration `init` writes: loopback listeners, TLS 1.3 only.
const DEV_CONFIG: &str = r#"# Portier development configuration, written by `portier init`.
# Every key can be overridden by PORTIER_<SECTION>_<KEY>, e.g. PORTIER_DATABASE_URL.

[gateway]
listen = "127.0.0.1:8443"
cert = "certs/server.pem"
key = "certs/server.key"
vendor_ca = "certs/vendor-ca.pem"
vendor_ca_key = "certs/vendor-ca.key"
tls_versions = ["1.3"]
handshake_timeout_secs = 10
connect_timeout_secs = 5
max_connections = 10000
max_connections_per_source = 64
fd_reserve = 256
linger_secs = 2
# This node's name (unique per running process on one database); default: the host name.
# node = "gw-1"

[api]
listen = "127.0.0.1:8444"
cert = "certs/server.pem"
key = "certs/server.key"
tls_versions = ["1.3"]
technician_cert_days = 365
max_connections = 256
max_connections_per_source = 64
handshake_timeout_secs = 10
header_read_timeout_secs = 10
idle_timeout_secs = 30
send_timeout_secs = 30

[database]
url = "sqlite://portier.db"

[policy]
max_window_hours = 12
max_horizon_days = 90
max_emergency_minutes = 240
report_due_hours = 24
on_overdue_report = "block"

[cluster]
# A node that cannot confirm it has seen every change for this long refuses
# new tunnels ("refuse") or also cuts the live ones ("cut").
max_staleness_secs = 5
on_stale = "refuse"

[log]
format = "text"
filter = "info"
"#;
