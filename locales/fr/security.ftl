# The security pages (owned by the security area).
sec-title = Astreinte : ce qui attend une action
sec-jump = Sur cette page
sec-pending-title = Demandes à trancher
sec-tunnels-title = Tunnels en cours
sec-em-title = Accès d'urgence
sec-reviews-title = Accès d'urgence à revoir
sec-lock-title = Mise en sécurité
sec-denials-title = Refus récents
sec-denials-intro = Les dernières connexions refusées par la passerelle, des plus récentes aux plus anciennes, avec le motif donné.
sec-em-intro = Ouvre l'accès tout de suite, sans fenêtre planifiée, pour une durée limitée. Chaque accès est notifié, puis revu par un second compte sécurité.
sec-em-security-only = L'accès d'urgence est accordé par un compte sécurité.
# Columns
sec-col-request = Demande
sec-col-vendor = Prestataire
sec-col-devices = Équipements
sec-col-device = Équipement
sec-col-period = Période
sec-col-reason = Motif
sec-col-requested-by = Demandé par
sec-col-decide = Décision
sec-col-technician = Technicien
sec-col-source = Adresse source
sec-col-since = Depuis
sec-col-bytes = Octets
sec-col-time-left = Temps restant avant la coupure
sec-col-action = Action
sec-col-granted-by = Accordé par
sec-col-justification = Justification
sec-col-review = Revue
sec-col-when = Quand
sec-col-device-asked = Équipement demandé
sec-col-certificate = Certificat
# Requests to decide
sec-kind-window = Fenêtre
sec-kind-extension = Prolongation
sec-emergency = Urgence
sec-extension-to = Prolongation demandée jusqu'au
sec-approve = Approuver
sec-approve-label = Approuver la demande de { $vendor }
sec-reject = Refuser
sec-reject-reason = Motif du refus
sec-approve-not-yours = Vous en êtes le demandeur : un autre compte décide.
sec-approve-emergency-security = La prolongation d'un accès d'urgence est approuvée par un compte sécurité.
sec-approve-not-granter = Vous avez accordé cet accès d'urgence : un second compte sécurité approuve sa prolongation.
# Live tunnels
sec-on-node = sur le nœud { $node }
sec-bytes = du prestataire { $from } · vers le prestataire { $to }
sec-cut-at = coupure à { $at }
sec-extension-asked = prolongation demandée jusqu'au { $at }
sec-terminate = Couper
sec-terminate-reason = Motif de la coupure
sec-unit-b = { $n } o
sec-unit-kb = { $n } ko
sec-unit-mb = { $n } Mo
sec-unit-gb = { $n } Go
# Reviews
sec-extra-networks = Réseaux supplémentaires : { $list }
sec-review-security-only = Revu par un compte sécurité.
sec-review-not-granter = Vous avez accordé cet accès : un second compte sécurité le revoit.
sec-verdict = Avis
sec-verdict-justified = Justifié
sec-verdict-unjustified = Non justifié
sec-comment = Commentaire
sec-review-submit = Enregistrer la revue
# Denials
sec-deny-unknown-device = Équipement inconnu.
sec-deny-device-disabled = L'équipement est désactivé.
sec-deny-unknown-technician = Certificat de technicien inconnu ou révoqué.
sec-deny-vendor-disabled = Le prestataire est désactivé.
sec-deny-device-not-assigned = L'équipement n'est pas attribué à ce prestataire.
sec-deny-source-ip-not-declared = L'adresse source n'appartient pas aux réseaux déclarés du prestataire.
sec-deny-no-active-window = Aucune fenêtre approuvée n'est ouverte en ce moment pour cet équipement.
sec-deny-lockdown = Mise en sécurité en vigueur.
sec-deny-report-overdue = Un compte-rendu d'intervention est en retard.
sec-deny-certificate-expired = Le certificat du technicien n'est pas valide en ce moment.
sec-deny-store-unavailable = La passerelle n'a pas pu vérifier les règles (base de données injoignable).
sec-deny-device-unreachable = L'équipement est injoignable.
sec-deny-suppressed = { $n ->
    [one] et 1 refus semblable non enregistré
   *[other] et { $n } refus semblables non enregistrés
}
# Emergency form
sec-em-vendor = Prestataire
sec-em-choose = Choisir un prestataire
sec-em-devices = Équipements
sec-em-no-devices = Aucun équipement n'est attribué à un prestataire.
sec-em-minutes = Durée (minutes)
sec-em-minutes-help = De 1 à { $max } minutes.
sec-em-justification = Justification
sec-em-justification-help = Pourquoi cela ne peut pas attendre une fenêtre planifiée. Enregistrée et notifiée.
sec-em-networks = Réseaux source supplémentaires (facultatif)
sec-em-networks-help = Admis pour cet accès seulement, en plus des réseaux déclarés du prestataire ; séparez-les par des virgules ou des espaces, par exemple 198.51.100.7/32.
sec-em-submit = Accorder l'accès d'urgence
# Lockdown
sec-lock-is-off = Aucune mise en sécurité en vigueur : les tunnels sont admis selon les règles.
sec-lock-is-on = Mise en sécurité en vigueur.
sec-lock-details = Depuis le { $since }, par { $by }. Motif : { $reason }
sec-lock-not-stored = Cette mise en sécurité s'applique sur ce nœud mais n'est pas encore enregistrée en base : les autres nœuds l'ignorent. L'enregistrement est retenté jusqu'à ce qu'il aboutisse.
sec-lock-file = Ce nœud est mis en sécurité par son fichier de mise en sécurité : levez-la sur le serveur avec `portier lockdown off`.
sec-lock-on-reason = Motif de la mise en sécurité
sec-lock-on-confirm = Je confirme : couper tout de suite chaque tunnel en cours et refuser les nouveaux jusqu'à la levée.
sec-lock-on-submit = Mettre en sécurité
sec-lock-off-reason = Motif de la levée
sec-lock-off-confirm = Je confirme : admettre de nouveau les tunnels, selon les règles habituelles.
sec-lock-off-submit = Lever la mise en sécurité
sec-lock-security-only = La mise en sécurité est activée et levée par un compte sécurité.
sec-lock-local-only = { $n ->
    [one] Mise en sécurité sur ce nœud (1 tunnel coupé, les nouveaux refusés), mais elle n'est pas encore enregistrée : la base de données ne l'a pas prise. L'enregistrement est retenté ; ensuite chaque nœud la suit.
   *[other] Mise en sécurité sur ce nœud ({ $n } tunnels coupés, les nouveaux refusés), mais elle n'est pas encore enregistrée : la base de données ne l'a pas prise. L'enregistrement est retenté ; ensuite chaque nœud la suit.
}
# Errors
sec-err-too-long = { $max ->
    [one] 1 caractère au plus.
   *[other] { $max } caractères au plus.
}
sec-err-characters = Retirez de ce texte les caractères de contrôle ou de sens d'écriture.
sec-err-verdict = Choisissez justifié ou non justifié.
sec-err-networks-many = { $max ->
    [one] 1 réseau au plus.
   *[other] { $max } réseaux au plus.
}
sec-err-network-all = { $net } admettrait toutes les adresses : indiquez les réseaux propres du prestataire.
sec-err-network-broad = { $net } est plus large que /{ $min } : indiquez des réseaux plus étroits.
sec-err-network = { $net } n'est pas un réseau (écrivez une adresse comme 198.51.100.7 ou un réseau comme 198.51.100.0/28).
sec-err-vendor-choose = Choisissez un prestataire.
sec-err-vendor-unknown = Ce prestataire n'existe pas ou est désactivé.
sec-err-devices = Choisissez au moins un équipement.
sec-err-device-unknown = L'un des équipements choisis n'existe plus.
sec-err-device-not-assigned = { $device } n'est pas attribué à { $vendor }.
sec-err-minutes = Indiquez un nombre entier de minutes, de 1 à { $max }.
sec-err-confirm = Cochez la case pour confirmer.
# Notices
sec-done-approved = Approuvé.
sec-done-rejected = Refusé.
sec-done-terminated = Le tunnel est coupé.
sec-done-terminate-pending = Coupure enregistrée ; le nœud qui porte le tunnel ne l'a pas encore confirmée.
sec-done-reviewed = Revue enregistrée.
sec-done-granted = Accès d'urgence accordé. Il est notifié, et attend la revue d'un second compte sécurité.
sec-done-locked = { $n ->
    [one] Mise en sécurité : 1 tunnel coupé sur ce nœud ; chaque nœud refuse les nouveaux.
   *[other] Mise en sécurité : { $n } tunnels coupés sur ce nœud ; chaque nœud refuse les nouveaux.
}
sec-done-lifted = La mise en sécurité est levée.
