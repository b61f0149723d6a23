//! Sign-in with the hospital's directory (issue 11) against a real OpenLDAP
//! `slapd` started by the test on a loopback port, from a fixture directory:
//! alice in the security group, bob in the auditors, carol in no group.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{Duration, TimeZone, Utc};
use portier::clock::{ManualClock, SharedClock};
use portier::domain::Role;
use portier::ops::{Ops, OpsError, PasswordSignIn, REFUSED};

use crate::common::*;
use crate::hostile::support::skip;
use crate::on_both_backends;

const SUFFIX: &str = "dc=hospital,dc=example";
const ROOT_DN: &str = "cn=admin,dc=hospital,dc=example";
const ROOT_PW: &str = "root-secret";
const SECURITY: &str = "cn=security,ou=groups,dc=hospital,dc=example";
const AUDITORS: &str = "cn=auditors,ou=groups,dc=hospital,dc=example";

// Each group also lists the directory's administrator: `groupOfNames` needs
// a member, and the tests empty groups of their people.
const FIXTURE: &str = "\
dn: dc=hospital,dc=example
objectClass: dcObject
objectClass: organization
o: Hospital
dc: hospital

dn: ou=people,dc=hospital,dc=example
objectClass: organizationalUnit
ou: people

dn: ou=groups,dc=hospital,dc=example
objectClass: organizationalUnit
ou: groups

dn: uid=alice,ou=people,dc=hospital,dc=example
objectClass: inetOrgPerson
uid: alice
cn: Alice
sn: Martin
userPassword: alice-directory-pw

dn: uid=bob,ou=people,dc=hospital,dc=example
objectClass: inetOrgPerson
uid: bob
cn: Bob
sn: Durand
userPassword: bob-directory-pw

dn: uid=carol,ou=people,dc=hospital,dc=example
objectClass: inetOrgPerson
uid: carol
cn: Carol
sn: Petit
userPassword: carol-directory-pw

dn: cn=security,ou=groups,dc=hospital,dc=example
objectClass: groupOfNames
cn: security
member: cn=admin,dc=hospital,dc=example
member: uid=alice,ou=people,dc=hospital,dc=example

dn: cn=auditors,ou=groups,dc=hospital,dc=example
objectClass: groupOfNames
cn: auditors
member: cn=admin,dc=hospital,dc=example
member: uid=bob,ou=people,dc=hospital,dc=example
";

/// A `slapd` this test started; stopped by its PID when dropped (even on a
/// panic), never any other process.
struct Slapd {
    child: Child,
    port: u16,
    /// The LDAPS port, and the CA of the directory's certificate.
    tls_port: u16,
    ca: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Slapd {
    fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    /// Starts a directory from the fixture, or says why it cannot.
    async fn start() -> Option<Slapd> {
        let slapd = Path::new("/usr/sbin/slapd");
        let slapadd = Path::new("/usr/sbin/slapadd");
        if !slapd.exists() || !slapadd.exists() {
            skip("slapd is not installed (apt-get install slapd ldap-utils)");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let pki = portier::pki::generate_dev_pki(&dir.path().join("certs")).unwrap();
        let db = dir.path().join("db");
        std::fs::create_dir(&db).unwrap();
        let conf = dir.path().join("slapd.conf");
        std::fs::write(
            &conf,
            format!(
                "include /etc/ldap/schema/core.schema\n\
                 include /etc/ldap/schema/cosine.schema\n\
                 include /etc/ldap/schema/inetorgperson.schema\n\
                 TLSCertificateFile {cert}\n\
                 TLSCertificateKeyFile {key}\n\
                 pidfile {dir}/slapd.pid\n\
                 modulepath /usr/lib/ldap\n\
                 moduleload back_mdb\n\
                 database mdb\n\
                 maxsize 10485760\n\
                 suffix \"{SUFFIX}\"\n\
                 rootdn \"{ROOT_DN}\"\n\
                 rootpw {ROOT_PW}\n\
                 directory {db}\n\
                 access to * by * read\n",
                dir = dir.path().display(),
                db = db.display(),
                cert = pki.server_cert.display(),
                key = pki.server_key.display(),
            ),
        )
        .unwrap();
        let ldif = dir.path().join("fixture.ldif");
        std::fs::write(&ldif, FIXTURE).unwrap();
        let added = Command::new(slapadd)
            .arg("-f")
            .arg(&conf)
            .arg("-l")
            .arg(&ldif)
            .output()
            .unwrap();
        assert!(
            added.status.success(),
            "slapadd failed: {}",
            String::from_utf8_lossy(&added.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let tls_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        // `-d 0`: stays in the foreground, so the child is slapd itself.
        let child = Command::new(slapd)
            .arg("-f")
            .arg(&conf)
            .arg("-h")
            .arg(format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"))
            .arg("-d")
            .arg("0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = Slapd {
            child,
            port,
            tls_port,
            ca: pki.server_ca,
            _dir: dir,
        };
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Some(s);
            }
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        panic!("slapd did not listen on port {port}");
    }

    /// Removes `who` from `group`, as the directory's administrator.
    async fn remove_member(&self, group: &str, who: &str) {
        self.change_member(group, who, false).await;
    }

    /// Adds `who` to `group`, as the directory's administrator.
    async fn add_member(&self, group: &str, who: &str) {
        self.change_member(group, who, true).await;
    }

    async fn change_member(&self, group: &str, who: &str, add: bool) {
        let (conn, mut ldap) = ldap3::LdapConnAsync::new(&self.url()).await.unwrap();
        ldap3::drive!(conn);
        ldap.simple_bind(ROOT_DN, ROOT_PW).await.unwrap().success().unwrap();
        let member = std::collections::HashSet::from([who]);
        let change = if add {
            ldap3::Mod::Add("member", member)
        } else {
            ldap3::Mod::Delete("member", member)
        };
        ldap.modify(group, vec![change]).await.unwrap().success().unwrap();
        ldap.unbind().await.unwrap();
    }
}

/// A node whose staff sign in with the directory, on a manual clock.
struct Node {
    t: TestApp,
    clock: Arc<ManualClock>,
    ops: Ops,
}

impl Node {
    async fn spawn(db: TestDb, ldap: &str) -> Self {
        // No second factor required, to keep the directory's part short (the
        // stages after the password are the local accounts', tested there).
        Self::spawn_with(db, "require_mfa = []\n", ldap).await
    }

    async fn spawn_with(db: TestDb, auth: &str, ldap: &str) -> Self {
        let clock = Arc::new(ManualClock::new(Utc.with_ymd_and_hms(2026, 11, 28, 10, 0, 5).unwrap()));
        let extra = format!("[auth]\n{auth}[auth.ldap]\n{ldap}");
        let t = TestApp::spawn_with(db, &extra, clock.clone()).await;
        let shared: SharedClock = clock.clone();
        let ops = Ops {
            cache: Arc::new(portier::admission::AdmissionCache::new(
                t.app.store.clone(),
                t.settings().policy_settings(),
                shared.clone(),
            )),
            store: t.app.store.clone(),
            registry: t.app.registry.clone(),
            clock: shared,
            rules: t.settings().api_limits(),
        };
        Self { t, clock, ops }
    }

    async fn sign_in(&self, name: &str, password: &str) -> Result<PasswordSignIn, OpsError> {
        // Past the growing delay of an earlier failure.
        self.clock.advance(Duration::seconds(61));
        self.ops.sign_in_password(name, password, None).await
    }

    async fn role_of(&self, name: &str) -> Option<(Role, bool, Option<String>)> {
        self.t
            .app
            .store
            .user_by_name(name)
            .await
            .unwrap()
            .map(|(u, c)| (u.role, u.disabled_at.is_some(), c.directory_dn))
    }
}

fn signed_in(r: Result<PasswordSignIn, OpsError>) {
    match r {
        Ok(PasswordSignIn::SignedIn(_)) => {}
        other => panic!("expected to be signed in, got {other:?}"),
    }
}

fn refused(r: Result<PasswordSignIn, OpsError>) {
    match r {
        Err(OpsError::Unauthenticated(m)) => assert_eq!(m, REFUSED),
        other => panic!("expected the refusal, got {other:?}"),
    }
}

async fn directory_sign_in(db: TestDb) {
    let Some(slapd) = Slapd::start().await else { return };
    let node = Node::spawn(
        db,
        &format!(
            "url = \"{}\"\nallow_plaintext = true\ntimeout_secs = 5\n\
             user_dn_template = \"uid={{user}},ou=people,{SUFFIX}\"\n\
             role_groups = {{ security = \"{SECURITY}\", auditor = \"{AUDITORS}\" }}\n",
            slapd.url()
        ),
    )
    .await;

    // alice is in the security group: her account is made at her first sign-in.
    signed_in(node.sign_in("alice", "alice-directory-pw").await);
    assert_eq!(
        node.role_of("alice").await,
        Some((Role::Security, false, Some(format!("uid=alice,ou=people,{SUFFIX}"))))
    );
    // A wrong password, an empty one (an unauthenticated bind), an unknown name:
    // the local accounts' refusal.
    refused(node.sign_in("alice", "not-her-password").await);
    refused(node.sign_in("alice", "").await);
    refused(node.sign_in("nobody", "whatever-password").await);
    // Names are compared without case: the same account.
    signed_in(node.sign_in(" Alice", "alice-directory-pw").await);
    assert_eq!(node.role_of("Alice").await, None);
    assert_eq!(node.role_of("nobody").await, None);

    // bob is an auditor.
    signed_in(node.sign_in("bob", "bob-directory-pw").await);
    assert_eq!(node.role_of("bob").await.map(|r| r.0), Some(Role::Auditor));

    // carol is in no mapped group: refused, and no account is made.
    refused(node.sign_in("carol", "carol-directory-pw").await);
    assert_eq!(node.role_of("carol").await, None);

    // alice leaves the security group: her next sign-in is refused and her
    // account disabled (its sessions and tokens stop).
    slapd
        .remove_member(SECURITY, &format!("uid=alice,ou=people,{SUFFIX}"))
        .await;
    refused(node.sign_in("alice", "alice-directory-pw").await);
    assert_eq!(
        node.role_of("alice").await.map(|r| (r.0, r.1)),
        Some((Role::Security, true))
    );
    // Stays refused while disabled.
    refused(node.sign_in("alice", "alice-directory-pw").await);

    // The directory's decisions are in the trail.
    let reader = node.t.token("auditor", "aud-reader", None).await;
    let (st, body) = node.t.call("GET", "/api/v1/audit", Some(&reader), None).await;
    assert_eq!(st, 200, "{body}");
    let text = body.to_string();
    for action in ["user.created", "user.role_changed", "user.disabled", "sign_in.failed"] {
        assert!(text.contains(action), "{action} missing: {text}");
    }
    node.t.stop().await;
    drop(slapd);
}
on_both_backends!(directory_sign_in, super::directory_sign_in);

/// Active Directory's way: a service account finds the person, then Portier
/// binds as the DN found; the second factor applies as to local accounts.
async fn search_mode_and_second_factor(db: TestDb) {
    let Some(slapd) = Slapd::start().await else { return };
    // The product's default: security and admin need a second factor.
    let node = Node::spawn_with(
        db,
        "require_mfa = [\"security\", \"admin\"]\n",
        &format!(
            "url = \"{}\"\nallow_plaintext = true\ntimeout_secs = 5\n\
             bind_dn = \"{ROOT_DN}\"\nbind_password = \"{ROOT_PW}\"\n\
             user_search_base = \"ou=people,{SUFFIX}\"\nuser_filter = \"(uid={{user}})\"\n\
             role_groups = {{ security = \"{SECURITY}\", auditor = \"{AUDITORS}\" }}\n",
            slapd.url()
        ),
    )
    .await;
    // alice is security: she must enrol a second factor before any session.
    match node.sign_in("alice", "alice-directory-pw").await {
        Ok(PasswordSignIn::MustEnrol(_)) => {}
        other => panic!("expected an enrolment, got {other:?}"),
    }
    assert_eq!(node.role_of("alice").await.map(|r| r.0), Some(Role::Security));
    refused(node.sign_in("alice", "not-her-password").await);
    // The name is escaped in the filter: a wildcard finds nobody.
    refused(node.sign_in("*", "alice-directory-pw").await);
    refused(node.sign_in("carol", "carol-directory-pw").await);

    // bob is an auditor, then moves to the security group: his role follows
    // at his next sign-in, with the enrolment the new role requires.
    signed_in(node.sign_in("bob", "bob-directory-pw").await);
    assert_eq!(node.role_of("bob").await.map(|r| r.0), Some(Role::Auditor));
    let bob = format!("uid=bob,ou=people,{SUFFIX}");
    slapd.add_member(SECURITY, &bob).await;
    slapd.remove_member(AUDITORS, &bob).await;
    match node.sign_in("bob", "bob-directory-pw").await {
        Ok(PasswordSignIn::MustEnrol(_)) => {}
        other => panic!("expected an enrolment, got {other:?}"),
    }
    assert_eq!(
        node.role_of("bob").await,
        Some((Role::Security, false, Some(bob.clone())))
    );
    node.t.stop().await;
    drop(slapd);
}
on_both_backends!(search_mode_and_second_factor, super::search_mode_and_second_factor);

#[test]
fn plain_ldap_is_refused_at_config_load() {
    let load = |ldap: &str| {
        portier::config::Settings::from_toml(
            &format!(
                "[gateway]\nnode = \"n1\"\n[auth.ldap]\n{ldap}\n\
                 user_dn_template = \"uid={{user}},ou=people,{SUFFIX}\"\n\
                 role_groups = {{ security = \"{SECURITY}\" }}\n"
            ),
            Path::new("/etc/portier"),
            Vec::<(String, String)>::new(),
        )
    };
    let err = load("url = \"ldap://dc.hospital.example\"").unwrap_err().to_string();
    assert!(err.contains("in clear"), "{err}");
    assert!(load("url = \"ldap://dc.hospital.example\"\nstarttls = true").is_ok());
    assert!(load("url = \"ldaps://dc.hospital.example\"").is_ok());
    assert!(load("url = \"ldap://127.0.0.1:389\"\nallow_plaintext = true").is_ok());
    let err = load("url = \"http://dc.hospital.example\"").unwrap_err().to_string();
    assert!(err.contains("ldaps://"), "{err}");
}

/// LDAPS and StartTLS to the directory, its certificate checked against the
/// configured CA (rustls, as the rest of Portier).
async fn over_tls(db: TestDb) {
    let Some(slapd) = Slapd::start().await else { return };
    let common = format!(
        "timeout_secs = 5\nuser_dn_template = \"uid={{user}},ou=people,{SUFFIX}\"\n\
         role_groups = {{ security = \"{SECURITY}\", auditor = \"{AUDITORS}\" }}\n"
    );
    let node = Node::spawn(
        db,
        &format!(
            "url = \"ldaps://localhost:{}\"\nca = \"{}\"\n{common}",
            slapd.tls_port,
            slapd.ca.display()
        ),
    )
    .await;
    signed_in(node.sign_in("bob", "bob-directory-pw").await);
    refused(node.sign_in("bob", "not-his-password").await);
    node.t.stop().await;

    let node = Node::spawn(
        TestDb::sqlite().await,
        &format!(
            "url = \"ldap://localhost:{}\"\nstarttls = true\nca = \"{}\"\n{common}",
            slapd.port,
            slapd.ca.display()
        ),
    )
    .await;
    signed_in(node.sign_in("bob", "bob-directory-pw").await);
    node.t.stop().await;

    // Without the CA, the directory's certificate is not trusted: no sign-in.
    let node = Node::spawn(
        TestDb::sqlite().await,
        &format!("url = \"ldaps://localhost:{}\"\n{common}", slapd.tls_port),
    )
    .await;
    match node.sign_in("bob", "bob-directory-pw").await {
        Err(OpsError::Unavailable(_)) => {}
        other => panic!("expected the directory to be unavailable, got {other:?}"),
    }
    node.t.stop().await;
    drop(slapd);
}
on_both_backends!(over_tls, super::over_tls);
