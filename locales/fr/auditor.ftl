# The auditor pages (owned by the auditor area).
aud-tabs = Pages d’audit
aud-tab-timeline = Chronologie
aud-tab-sessions = Sessions
aud-tab-reports = Comptes-rendus
aud-tab-trail = Journal d’audit
aud-tab-flows = Matrice des flux
aud-tab-evidence = Dossier de preuves
aud-tab-dossier = Dossier de sécurité
aud-title-timeline = Chronologie des interventions
aud-title-sessions = Sessions
aud-title-reports = Comptes-rendus d’intervention
aud-title-trail = Journal d’audit
aud-title-flows = Matrice des flux réseau
aud-title-evidence = Dossier de preuves
aud-title-dossier = Dossier de sécurité
# Filters
aud-vendor = Prestataire
aud-device = Équipement
aud-any = Tous
aud-since = Du
aud-until = Au (exclu)
aud-live-only = Sessions en cours uniquement
aud-filter = Filtrer
aud-reset = Effacer les filtres
aud-err-bad-id = Cet identifiant n’est pas valide.
aud-err-until-after-since = La fin doit être postérieure au début.
# Timeline
aud-timeline-intro = Les fenêtres de maintenance qui recoupent la période, par jour de début, avec les sessions observées par la passerelle.
aud-timeline-count = { $n ->
    [one] 1 fenêtre
   *[other] { $n } fenêtres
}
aud-window = Fenêtre :
aud-emergency = urgence
aud-no-sessions = Aucune session pendant cette fenêtre.
aud-state-requested = demandée
aud-state-approved = approuvée
aud-state-active = en cours
aud-state-ended = terminée
aud-state-rejected = refusée
aud-state-cancelled = annulée
aud-state-revoked = révoquée
# Sessions
aud-sessions-count = { $n ->
    [one] 1 session
   *[other] { $n } sessions
}
aud-sessions-csv = Télécharger ces sessions en CSV
aud-list-cut = Seules les { $n } premières sont affichées ; le téléchargement CSV les contient toutes.
aud-col-technician = Technicien
aud-col-vendor = Prestataire
aud-col-device = Équipement
aud-col-source = Source
aud-col-started = Début
aud-col-ended = Fin
aud-col-bytes = Volume
aud-col-end-reason = Motif de fin
aud-open = ouverte
aud-list-cut-period = Seules les { $n } premières fenêtres sont affichées : choisissez une période plus courte ou un prestataire.
aud-live = en cours
aud-open-not-live = ouverte, nœud arrêté
aud-bytes = { $n ->
    [one] 1 octet
   *[other] { $n } octets
}
aud-bytes-both = { $in } reçus, { $out } envoyés
aud-end-client_closed = fermée par le technicien
aud-end-device_closed = fermée par l’équipement
aud-end-window_ended = fin de la fenêtre
aud-end-window_revoked = fenêtre révoquée
aud-end-terminated = coupée par la sécurité
aud-end-technician_revoked = technicien révoqué
aud-end-vendor_disabled = prestataire désactivé
aud-end-device_disabled = équipement désactivé
aud-end-lockdown = mise en sécurité
aud-end-certificate_expired = certificat expiré
aud-end-gateway_shutdown = passerelle arrêtée
aud-end-gateway_restart = passerelle redémarrée
aud-end-node_lost = nœud perdu
aud-end-device_not_assigned = équipement plus attribué
aud-end-source_ip_not_declared = source plus déclarée
aud-end-node_stale = nœud pas à jour
aud-end-error = erreur
# Reports
aud-reports-default-period = Comptes-rendus déposés ces { $n } derniers jours (choisissez une période ci-dessus pour en voir d’autres).
aud-overdue-count = { $n ->
    [0] Aucun compte-rendu en retard
    [one] 1 compte-rendu en retard
   *[other] { $n } comptes-rendus en retard
}
aud-overdue-since = Compte-rendu attendu depuis le { $due }
aud-reports-count = { $n ->
    [one] 1 compte-rendu déposé
   *[other] { $n } comptes-rendus déposés
}
aud-report-outcome = Résultat
aud-report-filed = Déposé
aud-report-summary = Résumé
aud-report-actions = Actions menées
aud-report-follow-up = Suites à donner
aud-report-addenda = Compléments
aud-report-sessions = Sessions observées par la passerelle
aud-outcome-success = réussie
aud-outcome-partial = partielle
aud-outcome-failed = échouée
# Trail
aud-verify-title = Vérification de la chaîne
aud-verify-intro = Chaque événement porte l’empreinte du précédent. La vérification recalcule toute la chaîne : un événement modifié, inséré, supprimé ou déplacé la rompt.
aud-verify-submit = Vérifier le journal d’audit
aud-verify-ok = { $n ->
    [one] la chaîne de 1 événement est intacte.
   *[other] la chaîne de { $n } événements est intacte.
}
aud-verify-broken = la chaîne est rompue à l’événement { $seq } ({ $n } événements lus).
aud-trail-title = Événements, du plus récent au plus ancien
aud-trail-total = { $n ->
    [one] 1 événement dans le journal.
   *[other] { $n } événements dans le journal.
}
aud-col-seq = N°
aud-col-at = Date
aud-col-actor = Auteur
aud-col-action = Action
aud-col-object = Objet
aud-col-outcome = Issue
aud-col-details = Détails
aud-col-hash = Empreinte
aud-pages = Pages du journal
aud-newer = Événements plus récents
aud-older = Événements plus anciens
# Flows
aud-flows-intro = Tous les flux réseau de cette installation, d’après sa configuration en vigueur : flux entrants des prestataires, tunnels vers les équipements, et flux propres à Portier.
aud-flow-id = Flux
aud-flow-description = Description
aud-flow-exposure = Exposition à Internet
aud-flow-source = Source
aud-flow-destination = Destination
aud-flow-protocol = Protocole
aud-flow-encryption = Chiffrement
# Evidence
aud-evidence-intro = Une archive (tar) avec tout ce qui concerne une période, telle que `portier export` l’écrit : une fois décompressée, vérifiez-la avec `sha256sum -c SHA256SUMS`.
aud-evidence-limit = { $n ->
    [one] Un téléchargement couvre au plus 1 jour.
   *[other] Un téléchargement couvre au plus { $n } jours ; au-delà, utilisez `portier export` sur le serveur.
}
aud-evidence-submit = Télécharger le dossier de preuves
aud-verify-word-ok = intègre
aud-verify-word-broken = rompue

aud-dossier-intro = Les documents que l’équipe sécurité d’un établissement demande à un prestataire de télémaintenance, produits à l’instant à partir de la configuration et de la base de cette installation : droits par profil, authentification et cryptographie, flux réseau, architecture, logiciels tiers, guide d’installation et procédures. Les mêmes documents que ceux de la commande portier dossier.
aud-dossier-document = Document
aud-dossier-formats = Formats
aud-dossier-no-svg = Le schéma d’architecture n’a pas de rendu SVG (Graphviz absent de ce nœud) ; ses sources DOT et Mermaid sont ici :
