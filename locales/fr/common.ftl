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
signin-intro = Connectez-vous avec votre jeton d'API. Votre session de console se termine après { $idle } minutes d'inactivité et au plus { $absolute } heures après la connexion.
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
