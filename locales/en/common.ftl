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
signin-intro = Sign in with your API token. Your console session ends after { $idle } minutes without activity and at most { $absolute } hours after sign-in.
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
