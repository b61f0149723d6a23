-- Portier schema, PostgreSQL dialect: native TIMESTAMPTZ, CIDR and INET.

CREATE TABLE vendors (
    id               TEXT PRIMARY KEY,
    name             TEXT NOT NULL UNIQUE,
    security_contact TEXT,
    enabled          BOOLEAN NOT NULL DEFAULT TRUE,
    created_at       TIMESTAMPTZ NOT NULL
);

CREATE TABLE vendor_networks (
    vendor_id TEXT NOT NULL REFERENCES vendors(id) ON DELETE CASCADE,
    network   CIDR NOT NULL,
    PRIMARY KEY (vendor_id, network)
);

CREATE TABLE technicians (
    id                 TEXT PRIMARY KEY,
    vendor_id          TEXT NOT NULL REFERENCES vendors(id),
    name               TEXT NOT NULL,
    subject            TEXT NOT NULL,
    fingerprint_sha256 TEXT NOT NULL UNIQUE,
    certificate_pem    TEXT NOT NULL,
    not_after          TIMESTAMPTZ NOT NULL,
    revoked_at         TIMESTAMPTZ,
    created_at         TIMESTAMPTZ NOT NULL
);
CREATE INDEX technicians_vendor ON technicians(vendor_id);

CREATE TABLE devices (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    address     TEXT NOT NULL,
    protocol    TEXT NOT NULL,
    description TEXT,
    enabled     BOOLEAN NOT NULL DEFAULT TRUE,
    created_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE device_vendors (
    device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
    vendor_id TEXT NOT NULL REFERENCES vendors(id),
    PRIMARY KEY (device_id, vendor_id)
);
CREATE INDEX device_vendors_vendor ON device_vendors(vendor_id);

CREATE TABLE windows (
    id              TEXT PRIMARY KEY,
    vendor_id       TEXT NOT NULL REFERENCES vendors(id),
    starts_at       TIMESTAMPTZ NOT NULL,
    ends_at         TIMESTAMPTZ NOT NULL,
    state           TEXT NOT NULL CHECK (state IN ('requested', 'approved', 'rejected', 'cancelled', 'revoked')),
    reason          TEXT NOT NULL,
    emergency       BOOLEAN NOT NULL DEFAULT FALSE,
    requested_by    TEXT NOT NULL,
    approved_by     TEXT,
    decided_by      TEXT,
    decided_at      TIMESTAMPTZ,
    decision_reason TEXT,
    closed_at       TIMESTAMPTZ,
    had_session     BOOLEAN NOT NULL DEFAULT FALSE,
    created_at      TIMESTAMPTZ NOT NULL,
    CHECK (ends_at > starts_at)
);
CREATE INDEX windows_vendor ON windows(vendor_id, starts_at);
CREATE INDEX windows_open ON windows(state, ends_at);
-- Windows whose report may be due: few, and read on every admission snapshot.
CREATE INDEX windows_report_due ON windows(vendor_id) WHERE had_session AND NOT emergency;

CREATE TABLE window_devices (
    window_id TEXT NOT NULL REFERENCES windows(id) ON DELETE CASCADE,
    device_id TEXT NOT NULL REFERENCES devices(id),
    PRIMARY KEY (window_id, device_id)
);
CREATE INDEX window_devices_device ON window_devices(device_id);

CREATE TABLE window_extra_networks (
    window_id TEXT NOT NULL REFERENCES windows(id) ON DELETE CASCADE,
    network   CIDR NOT NULL,
    PRIMARY KEY (window_id, network)
);

CREATE TABLE sessions (
    id                 TEXT PRIMARY KEY,
    window_id          TEXT NOT NULL REFERENCES windows(id),
    vendor_id          TEXT NOT NULL REFERENCES vendors(id),
    technician_id      TEXT NOT NULL REFERENCES technicians(id),
    technician_subject TEXT NOT NULL,
    device_id          TEXT NOT NULL REFERENCES devices(id),
    source_ip          INET NOT NULL,
    source_port        INTEGER NOT NULL,
    node               TEXT NOT NULL,
    started_at         TIMESTAMPTZ NOT NULL,
    ended_at           TIMESTAMPTZ,
    bytes_from_vendor  BIGINT NOT NULL DEFAULT 0,
    bytes_to_vendor    BIGINT NOT NULL DEFAULT 0,
    end_reason         TEXT
);
CREATE INDEX sessions_started ON sessions(started_at);
CREATE INDEX sessions_window ON sessions(window_id);
CREATE INDEX sessions_open ON sessions(node) WHERE ended_at IS NULL;

CREATE TABLE reports (
    window_id  TEXT PRIMARY KEY REFERENCES windows(id),
    vendor_id  TEXT NOT NULL REFERENCES vendors(id),
    summary    TEXT NOT NULL,
    actions    TEXT NOT NULL,
    outcome    TEXT NOT NULL CHECK (outcome IN ('success', 'partial', 'failed')),
    follow_up  TEXT,
    filed_by   TEXT NOT NULL,
    filed_at   TIMESTAMPTZ NOT NULL
);

CREATE TABLE api_users (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'security', 'auditor', 'vendor')),
    vendor_id    TEXT REFERENCES vendors(id),
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    disabled_at  TIMESTAMPTZ,
    CHECK ((role = 'vendor') = (vendor_id IS NOT NULL))
);

CREATE TABLE audit_events (
    seq       BIGINT PRIMARY KEY,
    at        TIMESTAMPTZ NOT NULL,
    actor     TEXT NOT NULL,
    action    TEXT NOT NULL,
    object    TEXT NOT NULL,
    outcome   TEXT NOT NULL,
    details   TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
CREATE INDEX audit_events_at ON audit_events(at);

CREATE TABLE lockdown (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    active BOOLEAN NOT NULL,
    reason TEXT,
    set_by TEXT,
    set_at TIMESTAMPTZ
);
INSERT INTO lockdown (id, active) VALUES (1, FALSE);
