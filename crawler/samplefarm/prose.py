"""Generated French prose of the sample farm: titles and paragraphs, from a seeded RNG.

Plain words with accents, links, emphasis, lists and quotes: what the extraction must
keep, in text no real site owns. Same RNG draws as before the split: a seed's farm is
unchanged (``tests/test_samplefarm_golden.py``).
"""

from __future__ import annotations

import html
import random

SUJETS = [
    "La vidéosurveillance algorithmique",
    "Le règlement européen sur l’IA",
    "La CNIL",
    "Le Conseil d’État",
    "La reconnaissance faciale",
    "Le chiffrement de bout en bout",
    "La neutralité du net",
    "Le logiciel libre",
    "L’Arcep",
    "La loi de programmation",
    "Le fichage des militants",
    "La censure administrative",
    "Les données de santé",
    "L’open data des décisions de justice",
    "La conservation des données de connexion",
]
VERBES = [
    "menace",
    "encadre mal",
    "remet en cause",
    "étend",
    "fragilise",
    "consacre",
    "ignore",
    "contourne",
    "renforce",
    "examine",
]
COMPLEMENTS = [
    "les libertés fondamentales",
    "la vie privée des usagers",
    "le droit au chiffrement",
    "l’anonymat en ligne",
    "les associations",
    "les collectivités locales",
    "le secret des correspondances",
    "la liberté d’expression",
    "les hébergeurs indépendants",
]
PHRASES = [
    "Le texte adopté cette semaine prévoit des garanties bien trop faibles.",
    "Nous avons analysé les {n} pages du rapport publié par le gouvernement.",
    "Cette décision était attendue depuis des mois par les associations.",
    "Les député·es doivent maintenant se prononcer en séance publique.",
    "À Marseille, à Nîmes ou à Orléans, les expérimentations se multiplient.",
    "Le Conseil constitutionnel a été saisi par soixante parlementaires.",
    "Cette mesure concernerait près de {n} 000 personnes selon l’étude d’impact.",
    "L’été dernier, l’administration a reconnu l’absence d’évaluation sérieuse.",
    "Rien ne justifie une telle atteinte à la présomption d’innocence.",
    "Les opérateurs devront conserver ces données pendant un an.",
    "Nous publions aujourd’hui notre réponse détaillée, point par point.",
    "Ce « bluff technologique » n’a jamais fait ses preuves.",
    "Il faut rappeler que le règlement général sur la protection des données s’applique.",
    "La commission des lois a rejeté tous les amendements de suppression.",
    "Ça ne s’invente pas : le prestataire parle de « détecteur de vibration de l’air ».",
]
TEMPLATES = [
    "Chronique n°{n} : {sujet} {verbe} {comp}",
    "Dossier {n} — {sujet} et {comp}",
    "Semaine {n} : pourquoi {sujet_l} {verbe} {comp}",
    "Note {n} · {sujet} {verbe} {comp}",
    "Épisode {n} : {sujet} face à {comp}",
]
LONG_TITLE = (
    "Chronique n°{n} : un titre très long avec des caractères accentués pour tester la "
    "troncature à soixante-dix octets éé"
)


def title(rng: random.Random, n: int) -> str:
    """The title of article ``n`` (1-based) drawn from ``rng``: accents, guillemets, '°'."""
    sujet = rng.choice(SUJETS)
    return rng.choice(TEMPLATES).format(
        n=n,
        sujet=sujet,
        sujet_l=sujet[0].lower() + sujet[1:],
        verbe=rng.choice(VERBES),
        comp=rng.choice(COMPLEMENTS),
    )


def paragraphs(rng: random.Random, n: int, site_url: str) -> list[tuple[str, str]]:
    """(html, text) blocks of ordinary prose with links, emphasis, accents."""
    blocks = []
    for k in range(rng.randint(2, 5)):
        sents = [rng.choice(PHRASES).format(n=rng.randint(2, 99)) for _ in range(rng.randint(2, 4))]
        h = t = ""
        for i, s in enumerate(sents):
            sep = " " if i else ""
            if i == 1 and rng.random() < 0.5:
                link = f"{site_url}{2020 + n % 5}/{1 + k % 12:02d}/billet-{n}-{k}/"
                h += f'{sep}<a href="{link}">{html.escape(s, quote=False)}</a>'
            elif i == 2 and rng.random() < 0.3:
                h += f"{sep}<em>{html.escape(s, quote=False)}</em>"
            else:
                h += sep + html.escape(s, quote=False)
            t += sep + s
        blocks.append((f"<p>{h}</p>", t))
    if rng.random() < 0.25:
        items = rng.sample(COMPLEMENTS, 3)
        blocks.append(
            (
                "<ul>"
                + "".join(f"<li>{html.escape(i, quote=False)}</li>" for i in items)
                + "</ul>",
                "\n".join(items),
            )
        )
    if rng.random() < 0.2:
        q = rng.choice(PHRASES).format(n=3)
        blocks.append(
            (f"<blockquote><p>« {html.escape(q, quote=False)} »</p></blockquote>", f"« {q} »")
        )
    return blocks
