//! Table-driven tests of every admission rule.

use std::net::IpAddr;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;

use super::*;
use crate::domain::parse_network;

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn fp(n: u8) -> Fingerprint {
    Fingerprint([n; 32])
}

/// Vendor "acme" (declared 203.0.113.0/24 and 2001:db8:acme::/48 style networks),
/// technician 1 (active) and 2 (revoked), device "mri-1" assigned to acme,
/// device "ct-1" assigned to "other", device "old-1" disabled, and one approved
/// window on mri-1 from 08:00 to 12:00 UTC on 2026-03-10.
fn base() -> Snapshot {
    let mut s = Snapshot::default();
    let acme = VendorId::from("acme");
    let other = VendorId::from("other");
    s.vendors.insert(
        acme.clone(),
        VendorEntry {
            enabled: true,
            networks: vec![
                parse_network("203.0.113.0/24").unwrap(),
                parse_network("198.51.100.7").unwrap(),
                parse_network("2001:db8:ac::/48").unwrap(),
            ],
            oldest_unreported_end: None,
        },
    );
    s.vendors.insert(
        other.clone(),
        VendorEntry {
            enabled: true,
            networks: vec![parse_network("192.0.2.0/24").unwrap()],
            oldest_unreported_end: None,
        },
    );
    for (n, revoked) in [(1, false), (2, true)] {
        s.technicians.insert(
            fp(n),
            TechnicianEntry {
                id: TechnicianId(format!("tech-{n}")),
                vendor_id: acme.clone(),
                subject: format!("CN=tech-{n}"),
                revoked,
                not_before: Some(t("2026-01-01T00:00:00Z")),
                not_after: t("2027-01-01T00:00:00Z"),
            },
        );
    }
    for (name, enabled, vendor) in [("mri-1", true, &acme), ("ct-1", true, &other), ("old-1", false, &acme)] {
        s.devices.insert(
            name.into(),
            DeviceEntry {
                id: DeviceId::from(name),
                address: "127.0.0.1:22".into(),
                enabled,
                vendor_ids: vec![vendor.clone()],
            },
        );
    }
    add_window(
        &mut s,
        "w1",
        "mri-1",
        "2026-03-10T08:00:00Z",
        "2026-03-10T12:00:00Z",
        false,
        &[],
    );
    s
}

fn add_window(s: &mut Snapshot, id: &str, device: &str, start: &str, end: &str, emergency: bool, extra: &[&str]) {
    s.windows.entry(DeviceId::from(device)).or_default().push(WindowEntry {
        id: WindowId::from(id),
        vendor_id: VendorId::from("acme"),
        starts_at: t(start),
        ends_at: t(end),
        emergency,
        extra_networks: extra.iter().map(|n| parse_network(n).unwrap()).collect(),
    });
}

fn ask(s: &Snapshot, sni: Option<&str>, tech: Option<u8>, ip: &str, now: &str) -> Result<Admission, DenyReason> {
    let facts = Facts {
        sni,
        fingerprint: tech.map(fp),
        source_ip: ip.parse::<IpAddr>().unwrap(),
    };
    match decide(&facts, s, t(now)) {
        Decision::Allow(a) => Ok(a),
        Decision::Deny(d) => Err(d.reason),
    }
}

const IN: &str = "2026-03-10T09:00:00Z";
const IP: &str = "203.0.113.9";

#[test]
fn every_reason_code_in_a_table() {
    let s = base();
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Option<u8>,
        &'a str,
        &'a str,
        Result<&'a str, DenyReason>,
    );
    let cases: &[Case] = &[
        ("allowed", Some("mri-1"), Some(1), IP, IN, Ok("w1")),
        ("sni is case-insensitive", Some("MRI-1"), Some(1), IP, IN, Ok("w1")),
        ("no sni", None, Some(1), IP, IN, Err(DenyReason::UnknownDevice)),
        (
            "unknown sni",
            Some("xray-9"),
            Some(1),
            IP,
            IN,
            Err(DenyReason::UnknownDevice),
        ),
        (
            "disabled device",
            Some("old-1"),
            Some(1),
            IP,
            IN,
            Err(DenyReason::DeviceDisabled),
        ),
        (
            "no certificate",
            Some("mri-1"),
            None,
            IP,
            IN,
            Err(DenyReason::UnknownTechnician),
        ),
        (
            "unknown certificate",
            Some("mri-1"),
            Some(9),
            IP,
            IN,
            Err(DenyReason::UnknownTechnician),
        ),
        (
            "revoked technician",
            Some("mri-1"),
            Some(2),
            IP,
            IN,
            Err(DenyReason::UnknownTechnician),
        ),
        (
            "other vendor's device",
            Some("ct-1"),
            Some(1),
            IP,
            IN,
            Err(DenyReason::DeviceNotAssigned),
        ),
        (
            "undeclared source",
            Some("mri-1"),
            Some(1),
            "192.0.2.1",
            IN,
            Err(DenyReason::SourceIpNotDeclared),
        ),
        (
            "second declared network",
            Some("mri-1"),
            Some(1),
            "198.51.100.7",
            IN,
            Ok("w1"),
        ),
        (
            "host network is exact",
            Some("mri-1"),
            Some(1),
            "198.51.100.8",
            IN,
            Err(DenyReason::SourceIpNotDeclared),
        ),
        (
            "ipv6 declared network",
            Some("mri-1"),
            Some(1),
            "2001:db8:ac:1::5",
            IN,
            Ok("w1"),
        ),
        (
            "ipv6 outside",
            Some("mri-1"),
            Some(1),
            "2001:db8:ad::5",
            IN,
            Err(DenyReason::SourceIpNotDeclared),
        ),
        (
            "ipv4-mapped ipv6 inside",
            Some("mri-1"),
            Some(1),
            "::ffff:203.0.113.9",
            IN,
            Ok("w1"),
        ),
        (
            "ipv4-mapped ipv6 outside",
            Some("mri-1"),
            Some(1),
            "::ffff:192.0.2.1",
            IN,
            Err(DenyReason::SourceIpNotDeclared),
        ),
        (
            "before the window",
            Some("mri-1"),
            Some(1),
            IP,
            "2026-03-10T07:59:59Z",
            Err(DenyReason::NoActiveWindow),
        ),
        (
            "start is inclusive",
            Some("mri-1"),
            Some(1),
            IP,
            "2026-03-10T08:00:00Z",
            Ok("w1"),
        ),
        (
            "last instant inside",
            Some("mri-1"),
            Some(1),
            IP,
            "2026-03-10T11:59:59.999Z",
            Ok("w1"),
        ),
        (
            "end is exclusive",
            Some("mri-1"),
            Some(1),
            IP,
            "2026-03-10T12:00:00Z",
            Err(DenyReason::NoActiveWindow),
        ),
        (
            "another day",
            Some("mri-1"),
            Some(1),
            IP,
            "2026-03-11T09:00:00Z",
            Err(DenyReason::NoActiveWindow),
        ),
    ];
    for (name, sni, tech, ip, now, want) in cases {
        let got = ask(&s, *sni, *tech, ip, now).map(|a| a.window_id.0);
        assert_eq!(
            got.as_deref().map_err(|e| *e),
            want.as_ref().map(|w| *w).map_err(|e| *e),
            "case: {name}"
        );
    }
}

#[test]
fn allow_carries_the_window_end_as_deadline() {
    let a = ask(&base(), Some("mri-1"), Some(1), IP, IN).unwrap();
    assert_eq!(a.deadline, t("2026-03-10T12:00:00Z"));
    assert_eq!(a.vendor_id.as_str(), "acme");
    assert_eq!(a.technician_id.as_str(), "tech-1");
    assert!(!a.emergency && !a.report_overdue_warning);
}

#[test]
fn disabled_vendor_is_refused_even_inside_a_window() {
    let mut s = base();
    s.vendors.get_mut("acme").unwrap().enabled = false;
    assert_eq!(ask(&s, Some("mri-1"), Some(1), IP, IN), Err(DenyReason::VendorDisabled));
}

#[test]
fn technician_of_a_vanished_vendor_is_unknown() {
    let mut s = base();
    s.vendors.remove("acme");
    assert_eq!(
        ask(&s, Some("mri-1"), Some(1), IP, IN),
        Err(DenyReason::UnknownTechnician)
    );
}

#[test]
fn lockdown_refuses_everything_first() {
    let mut s = base();
    s.lockdown = true;
    assert_eq!(ask(&s, Some("mri-1"), Some(1), IP, IN), Err(DenyReason::Lockdown));
    assert_eq!(ask(&s, None, None, "192.0.2.1", IN), Err(DenyReason::Lockdown));
}

#[test]
fn a_window_of_the_same_device_for_another_vendor_does_not_count() {
    let mut s = base();
    s.windows.clear();
    s.devices
        .get_mut("mri-1")
        .unwrap()
        .vendor_ids
        .push(VendorId::from("other"));
    s.windows.entry(DeviceId::from("mri-1")).or_default().push(WindowEntry {
        id: WindowId::from("w-other"),
        vendor_id: VendorId::from("other"),
        starts_at: t("2026-03-10T08:00:00Z"),
        ends_at: t("2026-03-10T12:00:00Z"),
        emergency: false,
        extra_networks: vec![],
    });
    assert_eq!(ask(&s, Some("mri-1"), Some(1), IP, IN), Err(DenyReason::NoActiveWindow));
}

#[test]
fn window_over_midnight() {
    let mut s = base();
    add_window(
        &mut s,
        "night",
        "mri-1",
        "2026-03-10T22:00:00Z",
        "2026-03-11T02:00:00Z",
        false,
        &[],
    );
    for (now, want) in [
        ("2026-03-10T21:59:59Z", Err(DenyReason::NoActiveWindow)),
        ("2026-03-10T23:59:59Z", Ok("night")),
        ("2026-03-11T00:00:00Z", Ok("night")),
        ("2026-03-11T01:59:59Z", Ok("night")),
        ("2026-03-11T02:00:00Z", Err(DenyReason::NoActiveWindow)),
    ] {
        let got = ask(&s, Some("mri-1"), Some(1), IP, now).map(|a| a.window_id.0);
        assert_eq!(got.as_deref().map_err(|e| *e), want, "at {now}");
    }
}

#[test]
fn window_across_a_dst_change_lasts_its_real_duration() {
    // Paris leaves winter time on 2026-03-29 at 02:00 local (01:00 UTC): a window
    // booked 01:00-04:00 local time lasts two real hours, not three.
    let local = |h| {
        Paris
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2026, 3, 29)
                    .unwrap()
                    .and_hms_opt(h, 0, 0)
                    .unwrap(),
            )
            .single()
            .unwrap()
            .with_timezone(&Utc)
    };
    let (start, end) = (local(1), local(4));
    assert_eq!(end - start, Duration::hours(2));
    let mut s = base();
    s.windows.clear();
    add_window(
        &mut s,
        "dst",
        "mri-1",
        &start.to_rfc3339(),
        &end.to_rfc3339(),
        false,
        &[],
    );
    let at = |d: DateTime<Utc>| ask(&s, Some("mri-1"), Some(1), IP, &d.to_rfc3339()).map(|a| a.deadline);
    assert_eq!(at(start), Ok(end));
    assert_eq!(at(start + Duration::minutes(119)), Ok(end));
    assert_eq!(at(end), Err(DenyReason::NoActiveWindow));
    assert_eq!(at(start - Duration::seconds(1)), Err(DenyReason::NoActiveWindow));
    // And back to winter time on 2026-10-25: 01:00-04:00 local is four real hours.
    let autumn = |h| {
        Paris
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(2026, 10, 25)
                    .unwrap()
                    .and_hms_opt(h, 0, 0)
                    .unwrap(),
            )
            .single()
            .unwrap()
            .with_timezone(&Utc)
    };
    assert_eq!(autumn(4) - autumn(1), Duration::hours(4));
}

#[test]
fn of_overlapping_windows_the_latest_end_wins() {
    let mut s = base();
    add_window(
        &mut s,
        "w2",
        "mri-1",
        "2026-03-10T08:30:00Z",
        "2026-03-10T14:00:00Z",
        false,
        &[],
    );
    let a = ask(&s, Some("mri-1"), Some(1), IP, IN).unwrap();
    assert_eq!((a.window_id.as_str(), a.deadline), ("w2", t("2026-03-10T14:00:00Z")));
}

#[test]
fn overdue_report_blocks_but_not_emergency_grants() {
    let mut s = base();
    s.vendors.get_mut("acme").unwrap().oldest_unreported_end = Some(t("2026-03-09T08:00:00Z"));
    // Due exactly 24 h after that end: from then on, refused.
    assert_eq!(
        ask(&s, Some("mri-1"), Some(1), IP, "2026-03-10T08:00:00Z"),
        Err(DenyReason::ReportOverdue)
    );
    assert_eq!(ask(&s, Some("mri-1"), Some(1), IP, IN), Err(DenyReason::ReportOverdue));

    s.vendors.get_mut("acme").unwrap().oldest_unreported_end = Some(t("2026-03-09T09:00:01Z"));
    assert!(ask(&s, Some("mri-1"), Some(1), IP, IN).is_ok(), "not due yet");

    s.vendors.get_mut("acme").unwrap().oldest_unreported_end = Some(t("2026-03-01T00:00:00Z"));
    add_window(
        &mut s,
        "em",
        "mri-1",
        "2026-03-10T08:45:00Z",
        "2026-03-10T10:00:00Z",
        true,
        &[],
    );
    let a = ask(&s, Some("mri-1"), Some(1), IP, IN).unwrap();
    assert_eq!(a.window_id.as_str(), "em");
    assert!(a.emergency);

    s.settings.on_overdue = OverdueMode::Warn;
    s.windows.get_mut("mri-1").unwrap().retain(|w| !w.emergency);
    let a = ask(&s, Some("mri-1"), Some(1), IP, IN).unwrap();
    assert!(a.report_overdue_warning);
}

#[test]
fn emergency_extra_networks_admit_only_during_the_grant() {
    let mut s = base();
    s.windows.clear();
    add_window(
        &mut s,
        "em",
        "mri-1",
        "2026-03-10T08:00:00Z",
        "2026-03-10T09:00:00Z",
        true,
        &["192.0.2.0/28"],
    );
    add_window(
        &mut s,
        "plain",
        "mri-1",
        "2026-03-10T08:00:00Z",
        "2026-03-10T10:00:00Z",
        false,
        &[],
    );
    // The extra network admits through the grant only, and the deadline is the grant's.
    let a = ask(&s, Some("mri-1"), Some(1), "192.0.2.5", "2026-03-10T08:30:00Z").unwrap();
    assert_eq!((a.window_id.as_str(), a.deadline), ("em", t("2026-03-10T09:00:00Z")));
    // A declared address uses the longer plain window.
    assert_eq!(
        ask(&s, Some("mri-1"), Some(1), IP, "2026-03-10T08:30:00Z")
            .unwrap()
            .window_id
            .as_str(),
        "plain"
    );
    // Outside the extra network, or after the grant: refused as undeclared.
    assert_eq!(
        ask(&s, Some("mri-1"), Some(1), "192.0.2.17", "2026-03-10T08:30:00Z"),
        Err(DenyReason::SourceIpNotDeclared)
    );
    assert_eq!(
        ask(&s, Some("mri-1"), Some(1), "192.0.2.5", "2026-03-10T09:00:00Z"),
        Err(DenyReason::SourceIpNotDeclared)
    );
}

#[test]
fn reason_codes_are_stable() {
    let all = [
        (DenyReason::UnknownDevice, "unknown_device"),
        (DenyReason::DeviceDisabled, "device_disabled"),
        (DenyReason::UnknownTechnician, "unknown_technician"),
        (DenyReason::VendorDisabled, "vendor_disabled"),
        (DenyReason::DeviceNotAssigned, "device_not_assigned"),
        (DenyReason::SourceIpNotDeclared, "source_ip_not_declared"),
        (DenyReason::NoActiveWindow, "no_active_window"),
        (DenyReason::Lockdown, "lockdown"),
        (DenyReason::ReportOverdue, "report_overdue"),
        (DenyReason::CertificateExpired, "certificate_expired"),
        (DenyReason::StoreUnavailable, "store_unavailable"),
        (DenyReason::DeviceUnreachable, "device_unreachable"),
    ];
    for (r, code) in all {
        assert_eq!(r.code(), code);
        assert_eq!(serde_json::to_value(r).unwrap(), code);
    }
}

/// Technician 1's certificate valid from `nb` to `na` (`None`: unknown).
fn with_validity(nb: Option<&str>, na: &str) -> Snapshot {
    let mut s = base();
    if let Some(tech) = s.technicians.get_mut(&fp(1)) {
        tech.not_before = nb.map(t);
        tech.not_after = t(na);
    }
    s
}

#[test]
fn certificate_validity_bounds() {
    let nb = "2026-03-10T08:30:00Z";
    let na = "2026-03-10T10:00:00Z";
    let s = with_validity(Some(nb), na);
    let expired = DenyReason::CertificateExpired;
    let cases: &[(&str, &str, bool)] = &[
        ("before not_before", "2026-03-10T08:29:59Z", false),
        ("at not_before", nb, true),
        ("just before not_after", "2026-03-10T09:59:59.999999Z", true),
        ("at not_after exactly", na, false),
        ("after not_after", "2026-03-10T11:00:00Z", false),
    ];
    for (name, now, admitted) in cases {
        let got = ask(&s, Some("mri-1"), Some(1), IP, now).map(|a| a.window_id.to_string());
        let want = if *admitted { Ok("w1".to_owned()) } else { Err(expired) };
        assert_eq!(got, want, "{name}");
    }
    // Unknown validity (an unreadable stored certificate) is refused, never "valid forever".
    let unknown = with_validity(None, "2099-01-01T00:00:00Z");
    assert_eq!(
        ask(&unknown, Some("mri-1"), Some(1), IP, IN).map(|a| a.window_id),
        Err(expired)
    );
    // An expired certificate is refused before the device is even looked up.
    let s = with_validity(Some(nb), "2026-03-10T08:45:00Z");
    assert_eq!(
        ask(&s, Some("xray-9"), Some(1), IP, IN).map(|a| a.window_id),
        Err(expired)
    );
}

#[test]
fn deadline_is_the_earlier_of_window_end_and_not_after() {
    // Certificate ends inside the window: the tunnel ends with the certificate.
    let s = with_validity(Some("2026-01-01T00:00:00Z"), "2026-03-10T10:00:00Z");
    let a = ask(&s, Some("mri-1"), Some(1), IP, IN).unwrap();
    assert_eq!(a.deadline, t("2026-03-10T10:00:00Z"));
    assert_eq!(a.certificate_not_after, t("2026-03-10T10:00:00Z"));
    // Certificate outlives the window: the window's end.
    let a = ask(&base(), Some("mri-1"), Some(1), IP, IN).unwrap();
    assert_eq!(a.deadline, t("2026-03-10T12:00:00Z"));
    assert_eq!(a.certificate_not_after, t("2027-01-01T00:00:00Z"));
}
