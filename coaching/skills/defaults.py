"""The default B2B sales rubric an admin can load with one click: six competencies, five levels each.

Texts are data, not gettext strings, because they are stored per organization in
both languages and an admin edits them afterwards.
"""

# (name_de, name_en, description_de, description_en, [(level_de, level_en) for levels 1..5])
DEFAULT_RUBRIC = [
    (
        "Bedarfsanalyse",
        "Discovery",
        "Versteht Situation, Probleme und Ziele des Kunden, bevor eine Lösung vorgeschlagen wird.",
        "Understands the customer's situation, problems and goals before proposing a solution.",
        [
            ("Stellt kaum offene Fragen und springt direkt zum Produkt.", "Asks few open questions and jumps straight to the product."),
            ("Fragt nach dem Bedarf, bleibt aber bei oberflächlichen Antworten stehen.", "Asks about needs but stops at surface answers."),
            ("Erarbeitet Probleme, Auswirkungen und Beteiligte mit einem festen Fragenkatalog.", "Works out problems, impact and people involved with a set list of questions."),
            ("Quantifiziert den Schaden des Status quo gemeinsam mit dem Kunden.", "Quantifies the cost of the status quo together with the customer."),
            ("Deckt Bedarf auf, den der Kunde selbst noch nicht gesehen hat, und dient anderen als Vorbild.", "Uncovers needs the customer had not seen yet and is a model for others."),
        ],
    ),
    (
        "Qualifizierung",
        "Qualification",
        "Prüft früh Budget, Entscheidungsweg, Bedarf und Zeitplan und trennt sich von aussichtslosen Deals.",
        "Checks budget, decision process, need and timing early and drops deals without a chance.",
        [
            ("Nimmt jeden Kontakt in die Pipeline auf.", "Puts every contact into the pipeline."),
            ("Fragt nach dem Budget, kennt aber den Entscheidungsweg nicht.", "Asks about budget but does not know the decision process."),
            ("Kennt Budget, Entscheider und Zeitplan bei den meisten Deals.", "Knows budget, decision maker and timing for most deals."),
            ("Dokumentiert die Qualifizierung vollständig und disqualifiziert konsequent.", "Records the qualification in full and disqualifies consistently."),
            ("Sagt Abschlusswahrscheinlichkeiten zuverlässig voraus; die Pipeline enthält kaum Ballast.", "Predicts closing chances reliably; the pipeline carries almost no dead weight."),
        ],
    ),
    (
        "Präsentation",
        "Presentation",
        "Stellt die Lösung verständlich und auf den Bedarf des Kunden zugeschnitten vor.",
        "Presents the solution clearly and tailored to the customer's needs.",
        [
            ("Zeigt Standardfolien ohne Bezug zum Kunden.", "Shows standard slides with no link to the customer."),
            ("Passt einzelne Beispiele an, erklärt aber vor allem Funktionen.", "Adapts some examples but mainly explains features."),
            ("Verknüpft jede gezeigte Funktion mit einem Problem aus der Bedarfsanalyse.", "Links every feature shown to a problem from discovery."),
            ("Führt das Gespräch souverän, auch vor mehreren Entscheidern und bei Rückfragen.", "Leads the meeting with confidence, also in front of several decision makers and under questions."),
            ("Gestaltet Präsentationen, die der Kunde intern selbst weiterverwendet.", "Builds presentations that the customer reuses internally."),
        ],
    ),
    (
        "Verhandlung",
        "Negotiation",
        "Verhandelt Preis und Bedingungen so, dass Wert und Marge erhalten bleiben.",
        "Negotiates price and terms so that value and margin are kept.",
        [
            ("Gibt Rabatte auf die erste Nachfrage.", "Gives discounts on the first request."),
            ("Verteidigt den Preis, hat aber keine Gegenforderungen vorbereitet.", "Defends the price but has no counter-demands prepared."),
            ("Tauscht jedes Zugeständnis gegen eine Gegenleistung.", "Trades every concession for something in return."),
            ("Plant Verhandlungen mit Zielen, Grenzen und Alternativen und hält die Marge.", "Plans negotiations with goals, limits and alternatives and keeps the margin."),
            ("Erzielt regelmäßig bessere Bedingungen als der Durchschnitt und coacht andere darin.", "Regularly gets better terms than average and coaches others in it."),
        ],
    ),
    (
        "Abschluss",
        "Closing",
        "Führt Deals mit klaren nächsten Schritten und einem gemeinsamen Plan zur Unterschrift.",
        "Leads deals to signature with clear next steps and a plan agreed with the customer.",
        [
            ("Wartet darauf, dass der Kunde sich meldet.", "Waits for the customer to get back."),
            ("Vereinbart nächste Schritte, aber ohne Termin.", "Agrees next steps, but without a date."),
            ("Jeder Deal hat einen datierten nächsten Schritt; fragt aktiv nach dem Auftrag.", "Every deal has a dated next step; asks for the order actively."),
            ("Arbeitet mit einem gemeinsamen Abschlussplan bis zur Unterschrift.", "Works with a mutual close plan up to the signature."),
            ("Schließt planbar zum zugesagten Termin ab; kaum verschobene Deals.", "Closes predictably on the committed date; hardly any slipped deals."),
        ],
    ),
    (
        "Einwandbehandlung",
        "Objection handling",
        "Nimmt Einwände auf, klärt ihren Kern und beantwortet sie überzeugend.",
        "Takes up objections, finds their core and answers them convincingly.",
        [
            ("Reagiert defensiv oder übergeht Einwände.", "Reacts defensively or ignores objections."),
            ("Beantwortet häufige Einwände mit auswendig gelernten Sätzen.", "Answers common objections with learned phrases."),
            ("Fragt nach, bevor geantwortet wird, und prüft, ob der Einwand ausgeräumt ist.", "Asks back before answering and checks whether the objection is resolved."),
            ("Nimmt erwartbare Einwände vorweg und belegt Antworten mit Referenzen und Zahlen.", "Anticipates likely objections and backs answers with references and figures."),
            ("Macht aus Einwänden Kaufgründe und teilt wirksame Antworten mit dem Team.", "Turns objections into reasons to buy and shares answers that work with the team."),
        ],
    ),
]
