# The security pages (owned by the security area).
sec-title = On call: what needs action
sec-jump = On this page
sec-pending-title = Requests to decide
sec-tunnels-title = Live tunnels
sec-em-title = Emergency access
sec-reviews-title = Emergency grants awaiting review
sec-lock-title = Lockdown
sec-denials-title = Recent denials
sec-denials-intro = The latest connections the gateway refused, newest first, with the reason it gave.
sec-em-intro = Opens access now, without a planned window, for a limited time. Every grant is notified and reviewed afterwards by a second security account.
sec-em-security-only = Emergency access is granted by a security account.
# Columns
sec-col-request = Request
sec-col-vendor = Vendor
sec-col-devices = Devices
sec-col-device = Device
sec-col-period = Period
sec-col-reason = Reason
sec-col-requested-by = Asked by
sec-col-decide = Decision
sec-col-technician = Technician
sec-col-source = Source address
sec-col-since = Since
sec-col-bytes = Bytes
sec-col-time-left = Time left before the cut
sec-col-action = Action
sec-col-granted-by = Granted by
sec-col-justification = Justification
sec-col-review = Review
sec-col-when = When
sec-col-device-asked = Device asked for
sec-col-certificate = Certificate
# Requests to decide
sec-kind-window = Window
sec-kind-extension = Extension
sec-emergency = Emergency
sec-extension-to = Extension asked until
sec-approve = Approve
sec-approve-label = Approve the request of { $vendor }
sec-reject = Reject
sec-reject-reason = Reason for rejecting
sec-approve-not-yours = You asked for this: another account decides.
sec-approve-emergency-security = The extension of an emergency grant is approved by a security account.
sec-approve-not-granter = You granted this emergency access: a second security account approves its extension.
# Live tunnels
sec-on-node = on node { $node }
sec-bytes = from vendor { $from } · to vendor { $to }
sec-cut-at = cut at { $at }
sec-extension-asked = extension asked until { $at }
sec-terminate = Terminate
sec-terminate-reason = Reason for terminating
sec-unit-b = { $n } B
sec-unit-kb = { $n } kB
sec-unit-mb = { $n } MB
sec-unit-gb = { $n } GB
# Reviews
sec-extra-networks = Extra networks: { $list }
sec-review-security-only = Reviewed by a security account.
sec-review-not-granter = You granted this access: a second security account reviews it.
sec-verdict = Verdict
sec-verdict-justified = Justified
sec-verdict-unjustified = Not justified
sec-comment = Comment
sec-review-submit = Record the review
# Denials
sec-deny-unknown-device = No such device.
sec-deny-device-disabled = The device is disabled.
sec-deny-unknown-technician = Unknown or revoked technician certificate.
sec-deny-vendor-disabled = The vendor is disabled.
sec-deny-device-not-assigned = The device is not assigned to this vendor.
sec-deny-source-ip-not-declared = The source address is not among the vendor's declared networks.
sec-deny-no-active-window = No approved window is open now for this device.
sec-deny-lockdown = Lockdown in force.
sec-deny-report-overdue = An intervention report is overdue.
sec-deny-certificate-expired = The technician's certificate is not valid now.
sec-deny-store-unavailable = The gateway could not check the rules (database unreachable).
sec-deny-device-unreachable = The device could not be reached.
sec-deny-suppressed = { $n ->
    [one] and 1 similar refusal not recorded
   *[other] and { $n } similar refusals not recorded
}
# Emergency form
sec-em-vendor = Vendor
sec-em-choose = Choose a vendor
sec-em-devices = Devices
sec-em-no-devices = No device is assigned to a vendor.
sec-em-minutes = Duration (minutes)
sec-em-minutes-help = From 1 to { $max } minutes.
sec-em-justification = Justification
sec-em-justification-help = Why this cannot wait for a planned window. Recorded and notified.
sec-em-networks = Extra source networks (optional)
sec-em-networks-help = Admitted for this grant only, besides the vendor's declared networks; separate them with commas or spaces, e.g. 198.51.100.7/32.
sec-em-submit = Grant emergency access
# Lockdown
sec-lock-is-off = No lockdown is in force: tunnels are admitted by the rules.
sec-lock-is-on = Lockdown in force.
sec-lock-details = Since { $since }, by { $by }. Reason: { $reason }
sec-lock-not-stored = This lockdown holds on this node but is not stored in the database yet: other nodes do not know of it. It is retried until stored.
sec-lock-file = This node is locked down by its lockdown file: lift it on the server with `portier lockdown off`.
sec-lock-on-reason = Reason for the lockdown
sec-lock-on-confirm = I confirm: cut every live tunnel now and refuse new ones until the lockdown is lifted.
sec-lock-on-submit = Lock down
sec-lock-off-reason = Reason for lifting
sec-lock-off-confirm = I confirm: admit tunnels again, by the usual rules.
sec-lock-off-submit = Lift the lockdown
sec-lock-security-only = The lockdown is switched on and off by a security account.
sec-lock-local-only = { $n ->
    [one] Locked down on this node (1 tunnel cut, new ones refused), but the lockdown is not stored yet: the database did not take it. It is retried until stored; then every node follows.
   *[other] Locked down on this node ({ $n } tunnels cut, new ones refused), but the lockdown is not stored yet: the database did not take it. It is retried until stored; then every node follows.
}
# Errors
sec-err-too-long = { $max ->
    [one] At most 1 character.
   *[other] At most { $max } characters.
}
sec-err-characters = Remove the control or text-direction characters from this text.
sec-err-verdict = Choose justified or not justified.
sec-err-networks-many = { $max ->
    [one] At most 1 network.
   *[other] At most { $max } networks.
}
sec-err-network-all = { $net } would admit every address: give the vendor's own networks.
sec-err-network-broad = { $net } is broader than /{ $min }: give narrower networks.
sec-err-network = { $net } is not a network (write an address such as 198.51.100.7 or a network such as 198.51.100.0/28).
sec-err-vendor-choose = Choose a vendor.
sec-err-vendor-unknown = This vendor does not exist or is disabled.
sec-err-devices = Choose at least one device.
sec-err-device-unknown = One of the devices chosen does not exist any more.
sec-err-device-not-assigned = { $device } is not assigned to { $vendor }.
sec-err-minutes = Enter a whole number of minutes from 1 to { $max }.
sec-err-confirm = Tick the box to confirm.
# Notices
sec-done-approved = Approved.
sec-done-rejected = Rejected.
sec-done-terminated = The tunnel is cut.
sec-done-terminate-pending = Termination recorded; the node carrying the tunnel has not confirmed the cut yet.
sec-done-reviewed = Review recorded.
sec-done-granted = Emergency access granted. It is notified, and awaits review by a second security account.
sec-done-locked = { $n ->
    [one] Locked down: 1 tunnel cut on this node; every node refuses new ones.
   *[other] Locked down: { $n } tunnels cut on this node; every node refuses new ones.
}
sec-done-lifted = The lockdown is lifted.
