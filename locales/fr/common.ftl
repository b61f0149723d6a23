# Les mots communs de la console : l'enveloppe des pages, la connexion, les erreurs, les dates.
app-name = Portier
skip-to-content = Aller au contenu
nav-label = Menu principal
nav-security = Astreinte
nav-vendor = Mes interventions
nav-auditor = Audit
nav-admin = Administration
signed-in-as = Connecté·e : { $name } ({ $role })
role-admin = administrateur
role-security = sécurité
role-auditor = auditeur
role-vendor = fournisseur
sign-out = Se déconnecter
sign-out-everywhere = Se déconnecter partout
language = Langue
language-switch = Changer
lang-fr = Français
lang-en = English
lockdown-banner = MISE EN SÉCURITÉ en vigueur depuis le { $since } : tous les tunnels sont coupés et les nouveaux refusés. Motif : { $reason }
times-shown-in = Les heures sont affichées en { $tz }, avec l'heure UTC à côté.
live-updating = Mise à jour automatique
refresh = Actualiser
yes = Oui
no = Non
none = Aucun
cancel = Annuler
submit = Valider
save = Enregistrer
back = Retour
# Connexion
signin-title = Connexion
signin-intro = Connectez-vous avec votre nom et votre mot de passe, ou avec un jeton d'API. Votre session de console se termine après { $idle } minutes d'inactivité et au plus { $absolute } heures après la connexion.
signin-token = Jeton d'API
signin-token-help = Le jeton remis à la création de votre compte (il commence par ptk_).
signin-submit = Se connecter
signin-refused = Ce jeton n'a pas été accepté. Vérifiez-le ou demandez à un administrateur.
signin-expired = Votre session est terminée. Merci de vous reconnecter.
signed-out = Vous êtes déconnecté·e.
signed-out-everywhere = Vous êtes déconnecté·e de toutes vos sessions de console ({ $n }).
# Erreurs
error-title = Un problème est survenu
error-forbidden-title = Accès refusé
error-forbidden = Votre rôle ne donne pas accès à cette page ou à cette action.
error-not-found-title = Introuvable
error-not-found = Cette page n'existe pas.
error-csrf = Ce formulaire a expiré ou ne provient pas de cette console. Rechargez la page et recommencez.
error-unavailable = La base de données est injoignable pour le moment. Réessayez dans un instant ; les actions restrictives (mise en sécurité, coupure, révocation) prennent effet sur ce nœud malgré tout.
error-internal = Une erreur interne s'est produite. Elle a été journalisée.
error-invalid-form = Le formulaire n'a pas pu être lu.
error-too-large = Le formulaire est trop volumineux.
error-field = { $field } : { $message }
error-refused = Refusé : { $message }
error-conflict = Impossible pour le moment : { $message }
form-errors = Merci de corriger les champs signalés ci-dessous.
required = obligatoire
err-required = Ce champ est obligatoire.
err-datetime-format = Saisissez une date et une heure (jour, mois, année, heures et minutes).
err-datetime-ambiguous = Cette heure existe deux fois (passage à l'heure d'hiver) : choisissez une autre heure.
err-datetime-skipped = Cette heure n'existe pas (passage à l'heure d'été) : choisissez une autre heure.
# Durées
duration-minutes = { $n ->
    [one] 1 minute
   *[other] { $n } minutes
}
duration-hours = { $n ->
    [one] 1 heure
   *[other] { $n } heures
}
empty-list = Rien à afficher.
done = C'est fait.
# Mots de passe et second facteur (issue 11)
auth-with-password = Avec votre nom et votre mot de passe
auth-with-token = Avec un jeton d'API
auth-name = Nom du compte
auth-password = Mot de passe
auth-refused = Connexion refusée : nom, mot de passe ou code erroné, ou trop de tentatives. Patientez un instant et réessayez ; après des échecs répétés, le compte et votre adresse sont bloqués un moment.
auth-continue = Continuer
auth-code-title = Second facteur
auth-code-intro = Saisissez le code à 6 chiffres affiché par votre application d'authentification, ou l'un de vos codes de secours.
auth-code = Code
auth-code-help = 6 chiffres de votre application, ou un code de secours (xxxxx-xxxxx). Chaque code ne sert qu'une fois.
auth-new-password-title = Choisissez un nouveau mot de passe
auth-new-password-intro = Votre mot de passe a été réinitialisé par un administrateur : choisissez-en un nouveau (au moins { $min } caractères) avant de continuer.
auth-new-password = Nouveau mot de passe
auth-password-help = Au moins { $min } caractères. Une phrase de plusieurs mots se retient facilement.
auth-enrol-title = Configurer un second facteur
auth-enrol-required = Votre rôle exige un second facteur : configurez-le maintenant pour terminer la connexion.
auth-enrol-intro = Ajoutez ce secret à votre application d'authentification (ouvrez le lien sur un téléphone, ou saisissez le secret), puis saisissez le code qu'elle affiche. Ce secret n'est affiché qu'une fois.
auth-enrol-qr = Scannez ce code avec votre application d’authentification, ou saisissez le secret ci-dessous.
auth-enrol-secret = Secret (base32)
auth-enrol-uri = Lien pour l'application (otpauth://)
auth-enrol-code-help = Le code à 6 chiffres que votre application affiche pour Portier.
auth-enrol-confirm = Confirmer
auth-enrolled-title = Second facteur configuré
auth-recovery-intro = Vos codes de secours, affichés une seule fois : conservez-les en lieu sûr. Chacun remplace une fois un code de l'application.
auth-account-link = Mon compte
auth-account-title = Mon compte
auth-account-password = Mot de passe
auth-current-password = Mot de passe actuel
auth-current-wrong = Le mot de passe actuel est erroné.
auth-change-password = Changer le mot de passe
auth-account-totp = Second facteur (application d'authentification)
auth-totp-enrolled = Un second facteur est configuré : chaque connexion par mot de passe demande un code.
auth-done-password-changed = Votre mot de passe a été changé.
auth-done-sign-in-again = Cette connexion a expiré. Veuillez vous reconnecter.
