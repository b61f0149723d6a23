# The auditor pages (owned by the auditor area).
aud-tabs = Audit pages
aud-tab-timeline = Timeline
aud-tab-sessions = Sessions
aud-tab-reports = Reports
aud-tab-trail = Audit trail
aud-tab-flows = Flow matrix
aud-tab-evidence = Evidence bundle
aud-tab-dossier = Security dossier
aud-title-timeline = Timeline of interventions
aud-title-sessions = Sessions
aud-title-reports = Intervention reports
aud-title-trail = Audit trail
aud-title-flows = Network flow matrix
aud-title-evidence = Evidence bundle
aud-title-dossier = Security dossier
# Filters
aud-vendor = Vendor
aud-device = Device
aud-any = Any
aud-since = From
aud-until = To (excluded)
aud-live-only = Live sessions only
aud-filter = Filter
aud-reset = Clear the filters
aud-err-bad-id = This identifier is not valid.
aud-err-until-after-since = The end must be after the start.
# Timeline
aud-timeline-intro = Maintenance windows overlapping the period, by day of start, each with the sessions the gateway observed.
aud-timeline-count = { $n ->
    [one] 1 window
   *[other] { $n } windows
}
aud-window = Window:
aud-emergency = emergency
aud-no-sessions = No session during this window.
aud-state-requested = requested
aud-state-approved = approved
aud-state-active = active
aud-state-ended = ended
aud-state-rejected = rejected
aud-state-cancelled = cancelled
aud-state-revoked = revoked
# Sessions
aud-sessions-count = { $n ->
    [one] 1 session
   *[other] { $n } sessions
}
aud-sessions-csv = Download these sessions as CSV
aud-list-cut = Only the first { $n } are shown; the CSV download has them all.
aud-col-technician = Technician
aud-col-vendor = Vendor
aud-col-device = Device
aud-col-source = Source
aud-col-started = Started
aud-col-ended = Ended
aud-col-bytes = Volume
aud-col-end-reason = End
aud-open = open
aud-list-cut-period = Only the first { $n } windows are shown: choose a shorter period or a vendor.
aud-live = live
aud-open-not-live = open, node down
aud-bytes = { $n ->
    [one] 1 byte
   *[other] { $n } bytes
}
aud-bytes-both = { $in } in, { $out } out
aud-end-client_closed = closed by the technician
aud-end-device_closed = closed by the device
aud-end-window_ended = window ended
aud-end-window_revoked = window revoked
aud-end-terminated = terminated by security
aud-end-technician_revoked = technician revoked
aud-end-vendor_disabled = vendor disabled
aud-end-device_disabled = device disabled
aud-end-lockdown = lockdown
aud-end-certificate_expired = certificate expired
aud-end-gateway_shutdown = gateway stopped
aud-end-gateway_restart = gateway restarted
aud-end-node_lost = node lost
aud-end-device_not_assigned = device no longer assigned
aud-end-source_ip_not_declared = source no longer declared
aud-end-node_stale = node out of date
aud-end-error = error
# Reports
aud-reports-default-period = Reports filed in the last { $n } days (choose a period above to see others).
aud-overdue-count = { $n ->
    [0] No overdue report
    [one] 1 overdue report
   *[other] { $n } overdue reports
}
aud-overdue-since = Report due since { $due }
aud-reports-count = { $n ->
    [one] 1 report filed
   *[other] { $n } reports filed
}
aud-report-outcome = Outcome
aud-report-filed = Filed
aud-report-summary = Summary
aud-report-actions = Actions
aud-report-follow-up = Follow-up
aud-report-addenda = Addenda
aud-report-sessions = Sessions observed by the gateway
aud-outcome-success = success
aud-outcome-partial = partial
aud-outcome-failed = failed
# Trail
aud-verify-title = Verification of the chain
aud-verify-intro = Each event carries the hash of the previous one. Verification recomputes the whole chain: any modified, inserted, deleted or reordered event breaks it.
aud-verify-submit = Verify the audit trail
aud-verify-ok = { $n ->
    [one] the chain of 1 event is intact.
   *[other] the chain of { $n } events is intact.
}
aud-verify-broken = the chain is broken at event { $seq } ({ $n } events read).
aud-trail-title = Events, newest first
aud-trail-total = { $n ->
    [one] 1 event in the trail.
   *[other] { $n } events in the trail.
}
aud-col-seq = No.
aud-col-at = Time
aud-col-actor = Actor
aud-col-action = Action
aud-col-object = Object
aud-col-outcome = Outcome
aud-col-details = Details
aud-col-hash = Hash
aud-pages = Pages of the trail
aud-newer = Newer events
aud-older = Older events
# Flows
aud-flows-intro = Every network flow of this installation, from its live configuration: vendors' inbound flows, tunnels to devices, and Portier's own.
aud-flow-id = Flow
aud-flow-description = Description
aud-flow-exposure = Internet exposure
aud-flow-source = Source
aud-flow-destination = Destination
aud-flow-protocol = Protocol
aud-flow-encryption = Encryption
# Evidence
aud-evidence-intro = One archive (tar) with everything about a period, as `portier export` writes it: check it with `sha256sum -c SHA256SUMS` once unpacked.
aud-evidence-limit = { $n ->
    [one] A download covers at most 1 day.
   *[other] A download covers at most { $n } days; for longer, use `portier export` on the server.
}
aud-evidence-submit = Download the evidence bundle
aud-verify-word-ok = ok
aud-verify-word-broken = broken

aud-dossier-intro = The documents a hospital's security team asks of a remote-maintenance supplier, generated now from this installation's configuration and database: rights per profile, authentication and cryptography, network flows, architecture, third-party software, installation guide and procedures. The same documents as the portier dossier command writes.
aud-dossier-document = Document
aud-dossier-formats = Formats
aud-dossier-no-svg = The architecture schema has no SVG rendering (Graphviz is missing on this node); its DOT and Mermaid sources are here:
