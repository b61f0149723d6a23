# The console's shared words: the page shell, sign-in, errors, dates.
app-name = Portier
skip-to-content = Skip to content
nav-label = Main menu
nav-security = On call
nav-vendor = My interventions
nav-auditor = Audit
nav-admin = Administration
signed-in-as = Signed in as { $name } ({ $role })
role-admin = administrator
role-security = security
role-auditor = auditor
role-vendor = vendor
sign-out = Sign out
sign-out-everywhere = Sign out everywhere
language = Language
language-switch = Switch
lang-fr = Français
lang-en = English
lockdown-banner = LOCKDOWN in force since { $since }: every tunnel is cut and new ones are refused. Reason: { $reason }
times-shown-in = Times are shown in { $tz }, with UTC beside them.
live-updating = Updates by itself
refresh = Refresh
yes = Yes
no = No
none = None
cancel = Cancel
submit = Submit
save = Save
back = Back
# Sign-in
signin-title = Sign in
signin-intro = Sign in with your name and password, or with an API token. Your console session ends after { $idle } minutes without activity and at most { $absolute } hours after sign-in.
signin-token = API token
signin-token-help = The token given to you when your account was created (it starts with ptk_).
signin-submit = Sign in
signin-refused = This token was not accepted. Check it, or ask an administrator.
signin-expired = Your session has ended. Please sign in again.
signed-out = You are signed out.
signed-out-everywhere = You are signed out of every console session ({ $n }).
# Errors
error-title = Something went wrong
error-forbidden-title = Not allowed
error-forbidden = Your role does not give access to this page or action.
error-not-found-title = Not found
error-not-found = There is no such page.
error-csrf = This form has expired or did not come from this console. Reload the page and try again.
error-unavailable = The database cannot be reached right now. Try again in a moment; restrictive actions (lockdown, terminate, revoke) still take effect on this node.
error-internal = An internal error occurred. It has been logged.
error-invalid-form = The form could not be read.
error-too-large = The form is too large.
error-field = { $field }: { $message }
error-refused = Refused: { $message }
error-conflict = Not possible now: { $message }
form-errors = Please correct the fields marked below.
required = required
err-required = This field is required.
err-datetime-format = Enter a date and time (day, month, year, hours and minutes).
err-datetime-ambiguous = This time occurs twice (the clocks go back): choose another time.
err-datetime-skipped = This time does not exist (the clocks go forward): choose another time.
# Durations
duration-minutes = { $n ->
    [one] 1 minute
   *[other] { $n } minutes
}
duration-hours = { $n ->
    [one] 1 hour
   *[other] { $n } hours
}
empty-list = Nothing to show.
done = Done.
# Passwords and second factor (issue 11)
auth-with-password = With your name and password
auth-with-token = With an API token
auth-name = Account name
auth-password = Password
auth-refused = Sign-in refused: wrong name, password or code, or too many attempts. Wait a moment and try again; after repeated failures the account and your address are locked for a while.
auth-continue = Continue
auth-code-title = Second factor
auth-code-intro = Enter the 6-digit code shown by your authenticator app, or one of your recovery codes.
auth-code = Code
auth-code-help = 6 digits from your app, or a recovery code (xxxxx-xxxxx). Each code works once.
auth-new-password-title = Choose a new password
auth-new-password-intro = Your password was reset by an administrator: choose a new one (at least { $min } characters) before continuing.
auth-new-password = New password
auth-password-help = At least { $min } characters. A passphrase of several words is easy to remember.
auth-enrol-title = Set up a second factor
auth-enrol-required = Your role requires a second factor: set it up now to finish signing in.
auth-enrol-intro = Add this secret to your authenticator app (open the link on a phone, or type the secret), then enter the code it shows. This secret is shown only now.
auth-enrol-qr = Scan this code with your authenticator app, or type the secret below.
auth-enrol-secret = Secret (base32)
auth-enrol-uri = Link for the app (otpauth://)
auth-enrol-code-help = The 6-digit code your app shows for Portier.
auth-enrol-confirm = Confirm
auth-enrolled-title = Second factor set up
auth-recovery-intro = Your recovery codes, shown only now: keep them somewhere safe. Each one can replace a code from the app once.
auth-account-link = My account
auth-account-title = My account
auth-account-password = Password
auth-current-password = Current password
auth-current-wrong = The current password is not right.
auth-change-password = Change the password
auth-account-totp = Second factor (authenticator app)
auth-totp-enrolled = A second factor is set up: every sign-in with your password asks for a code.
auth-done-password-changed = Your password has been changed.
auth-done-sign-in-again = This sign-in has expired. Please sign in again.
