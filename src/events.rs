//! The names of everything Portier records or announces. Every audit event and
//! every notification is one [`Event`]; its dotted name is stored and sent as is,
//! so the names are a stable contract with auditors and webhook receivers.

use serde::Serialize;

/// One kind of audit event or notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "&'static str")]
pub enum Event {
    // --- windows ---
    WindowRequested,
    WindowApproved,
    WindowRejected,
    WindowCancelled,
    WindowRevoked,
    WindowExtensionRequested,
    WindowExtensionRejected,
    WindowExtended,
    WindowEndingSoon,
    // --- emergency grants ---
    EmergencyGranted,
    EmergencyReviewed,
    EmergencyReviewPending,
    // --- reports ---
    ReportFiled,
    ReportAddendum,
    ReportOverdue,
    // --- vendors, technicians, devices ---
    VendorCreated,
    VendorEnabled,
    VendorDisabled,
    VendorNetworksReplaced,
    TechnicianAdded,
    TechnicianRevoked,
    DeviceCreated,
    DeviceEnabled,
    DeviceDisabled,
    // --- accounts ---
    UserCreated,
    UserEnabled,
    UserDisabled,
    UserRoleChanged,
    UserLanguageChanged,
    PasswordChanged,
    PasswordReset,
    MfaEnrolled,
    MfaReset,
    RecoveryCodeUsed,
    SignInFailed,
    AccountLocked,
    TokenCreated,
    TokenRevoked,
    // --- the console ---
    ConsoleSignedIn,
    ConsoleSignedOut,
    // --- lockdown ---
    LockdownOn,
    LockdownOff,
    // --- sessions and admission (the gateway) ---
    SessionStarted,
    SessionEnded,
    SessionTerminated,
    AdmissionDenied,
    AdmissionDeniedBurst,
    TlsHandshakeFailed,
    ConnectionLimited,
    // --- the system ---
    NodeStarted,
    JournalEventsDropped,
    AuditAnchor,
    ApiRefused,
    /// A rotation about to write (recorded first: an interrupted one leaves a trace).
    SecretsRotationStarted,
    /// Secrets at rest re-encrypted under a new master key (`portier secrets rotate`).
    SecretsRotated,
    DataPurged,
    /// A purge refused because the audit events it would delete do not
    /// verify: evidence of tampering, kept and announced.
    DataPurgeRefused,
}

impl Event {
    /// Every event, for documentation and tests.
    pub const ALL: [Event; 57] = [
        Event::WindowRequested,
        Event::WindowApproved,
        Event::WindowRejected,
        Event::WindowCancelled,
        Event::WindowRevoked,
        Event::WindowExtensionRequested,
        Event::WindowExtensionRejected,
        Event::WindowExtended,
        Event::WindowEndingSoon,
        Event::EmergencyGranted,
        Event::EmergencyReviewed,
        Event::EmergencyReviewPending,
        Event::ReportFiled,
        Event::ReportAddendum,
        Event::ReportOverdue,
        Event::VendorCreated,
        Event::VendorEnabled,
        Event::VendorDisabled,
        Event::VendorNetworksReplaced,
        Event::TechnicianAdded,
        Event::TechnicianRevoked,
        Event::DeviceCreated,
        Event::DeviceEnabled,
        Event::DeviceDisabled,
        Event::UserCreated,
        Event::UserEnabled,
        Event::UserDisabled,
        Event::UserRoleChanged,
        Event::UserLanguageChanged,
        Event::PasswordChanged,
        Event::PasswordReset,
        Event::MfaEnrolled,
        Event::MfaReset,
        Event::RecoveryCodeUsed,
        Event::SignInFailed,
        Event::AccountLocked,
        Event::TokenCreated,
        Event::TokenRevoked,
        Event::ConsoleSignedIn,
        Event::ConsoleSignedOut,
        Event::LockdownOn,
        Event::LockdownOff,
        Event::SessionStarted,
        Event::SessionEnded,
        Event::SessionTerminated,
        Event::AdmissionDenied,
        Event::AdmissionDeniedBurst,
        Event::TlsHandshakeFailed,
        Event::ConnectionLimited,
        Event::NodeStarted,
        Event::JournalEventsDropped,
        Event::AuditAnchor,
        Event::ApiRefused,
        Event::SecretsRotationStarted,
        Event::SecretsRotated,
        Event::DataPurged,
        Event::DataPurgeRefused,
    ];

    /// The stable dotted name, as stored in the audit trail and sent to sinks.
    pub const fn as_str(self) -> &'static str {
        match self {
            Event::WindowRequested => "window.requested",
            Event::WindowApproved => "window.approved",
            Event::WindowRejected => "window.rejected",
            Event::WindowCancelled => "window.cancelled",
            Event::WindowRevoked => "window.revoked",
            Event::WindowExtensionRequested => "window.extension_requested",
            Event::WindowExtensionRejected => "window.extension_rejected",
            Event::WindowExtended => "window.extended",
            Event::WindowEndingSoon => "window.ending_soon",
            Event::EmergencyGranted => "emergency.granted",
            Event::EmergencyReviewed => "emergency.reviewed",
            Event::EmergencyReviewPending => "emergency.review_pending",
            Event::ReportFiled => "report.filed",
            Event::ReportAddendum => "report.addendum",
            Event::ReportOverdue => "report.overdue",
            Event::VendorCreated => "vendor.created",
            Event::VendorEnabled => "vendor.enabled",
            Event::VendorDisabled => "vendor.disabled",
            Event::VendorNetworksReplaced => "vendor.networks_replaced",
            Event::TechnicianAdded => "technician.added",
            Event::TechnicianRevoked => "technician.revoked",
            Event::DeviceCreated => "device.created",
            Event::DeviceEnabled => "device.enabled",
            Event::DeviceDisabled => "device.disabled",
            Event::UserCreated => "user.created",
            Event::UserEnabled => "user.enabled",
            Event::UserDisabled => "user.disabled",
            Event::UserRoleChanged => "user.role_changed",
            Event::UserLanguageChanged => "user.language_changed",
            Event::PasswordChanged => "user.password_changed",
            Event::PasswordReset => "user.password_reset",
            Event::MfaEnrolled => "user.mfa_enrolled",
            Event::MfaReset => "user.mfa_reset",
            Event::RecoveryCodeUsed => "user.recovery_code_used",
            Event::SignInFailed => "sign_in.failed",
            Event::AccountLocked => "sign_in.locked",
            Event::TokenCreated => "token.created",
            Event::TokenRevoked => "token.revoked",
            Event::ConsoleSignedIn => "console.signed_in",
            Event::ConsoleSignedOut => "console.signed_out",
            Event::LockdownOn => "lockdown.on",
            Event::LockdownOff => "lockdown.off",
            Event::SessionStarted => "session.started",
            Event::SessionEnded => "session.ended",
            Event::SessionTerminated => "session.terminated",
            Event::AdmissionDenied => "admission.denied",
            Event::AdmissionDeniedBurst => "admission.denied_burst",
            Event::TlsHandshakeFailed => "tls.handshake_failed",
            Event::ConnectionLimited => "connection.limited",
            Event::NodeStarted => "node.started",
            Event::JournalEventsDropped => "journal.events_dropped",
            Event::AuditAnchor => "audit.anchor",
            Event::ApiRefused => "api.refused",
            Event::SecretsRotationStarted => "secrets.rotation_started",
            Event::SecretsRotated => "secrets.rotated",
            Event::DataPurged => "data.purged",
            Event::DataPurgeRefused => "data.purge_refused",
        }
    }

    /// Whether the event calls for someone's attention: sent to syslog as a
    /// warning rather than a notice.
    pub const fn needs_attention(self) -> bool {
        matches!(
            self,
            Event::LockdownOn
                | Event::LockdownOff
                | Event::EmergencyGranted
                | Event::EmergencyReviewed
                | Event::EmergencyReviewPending
                | Event::AdmissionDenied
                | Event::AdmissionDeniedBurst
                | Event::ReportOverdue
                | Event::DataPurged
                | Event::DataPurgeRefused
        )
    }

    /// The event a stored name designates (`None` for a name no version recorded).
    pub fn parse(name: &str) -> Option<Event> {
        Event::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl From<Event> for &'static str {
    fn from(e: Event) -> Self {
        e.as_str()
    }
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for e in Event::ALL {
            assert!(seen.insert(e.as_str()), "{} named twice", e.as_str());
            assert_eq!(Event::parse(e.as_str()), Some(e));
            let (family, verb) = e.as_str().split_once('.').unwrap_or_default();
            assert!(!family.is_empty() && !verb.is_empty(), "{e} is not dotted");
        }
        assert_eq!(Event::parse("token.stolen"), None);
    }
}
