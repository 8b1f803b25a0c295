"""Real-world content shapes of mirrored feeds, each with its truth text written by hand.

Autoblogs mirror what feeds carry, and feeds carry more than prose: Shaarli link posts,
the WordPress footnotes plugin (La Quadrature du Net), tables, code, figures, embedded
videos, microblog posts of a few words, empty posts, images alone, entities and every
script. An autoblog opts in with ``--fault N:shapes``; its ordinary articles then cycle
through the shapes typical of its site type (``SHAPES_BY_TYPE``).

Each shape's truth text follows the farm's one truth rule (see the package docstring,
``crawler/samplefarm/__init__.py``, and the README's "The sample farm"). The truth
strings below are typed out from that rule, never computed from the markup,
so the farm stays an oracle independent of any extractor.
"""

from __future__ import annotations

import html
import random
from collections.abc import Callable

Shape = Callable[[random.Random, int, str], tuple[str, str]]

SENTENCES = [
    "Un excellent résumé des enjeux de la surveillance biométrique.",
    "À lire absolument avant le vote de mardi.",
    "Le rapport complet est enfin public, avec ses annexes.",
    "Très bonne synthèse sur la conservation des données de connexion.",
    "Une analyse juridique claire du nouveau texte.",
]
QUOTES = [
    "Les opérateurs devront conserver ces données pendant un an.",
    "Rien ne justifie une telle atteinte à la vie privée.",
    "La commission a rejeté tous les amendements de suppression.",
    "Ces caméras ne détectent rien de ce qu’on leur prête.",
]
NOTES = [
    "Voir le rapport de la CNIL publié en 2021, pages 12 à 14.",
    "Décision n° 2023-850 DC du 17 mai 2023.",
    "Le texte a été adopté en première lecture le 28 mars.",
    "Chiffres issus de l’étude d’impact du projet de loi.",
]
MICRO = [
    "Bonne nouvelle ce matin !",
    "On lâche rien.",
    "Merci à toutes et tous 🙏",
    "Ça recommence…",
    "Rendez-vous samedi place de la République.",
]


def _link_post(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """Shaarli: description, <br />, quotation, <br />, em dash and the permalink."""
    sentence, quote = rng.choice(SENTENCES), rng.choice(QUOTES)
    link = f"{site}?{c:06x}"
    markup = (
        f"{html.escape(sentence, quote=False)}<br />\n<blockquote>"
        f"{html.escape(quote, quote=False)}</blockquote>\n<br />&#8212; "
        f'<a href="{link}">Permalien</a>'
    )
    return markup, f"{sentence}\n{quote}\n— Permalien"


def _link_only(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """A bookmark without description: the link alone."""
    url = f"https://www.example.org/{rng.choice(['dossier', 'billet', 'note'])}/{c + 1}"
    return f'<a href="{url}">{url}</a>', url


def _wp_footnotes(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """WordPress footnotes plugin as La Quadrature du Net publishes it, between two
    half-escaped script runs (the engine escapes only the opening tag)."""
    pid = 19000 + c
    notes = rng.sample(NOTES, 2)
    tip = f"footnote_plugin_tooltip_{pid}_2_1"
    first = "La commission des lois examine le texte cette semaine"
    markup = (
        f'<p>{first}<sup class="footnote_plugin_tooltip_text" id="{tip}">'
        f'<a href="#footnote_plugin_reference_{pid}_2_1">1</a></sup>'
        f'<span class="footnote_tooltip" id="footnote_plugin_tooltip_text_{pid}_2_1">'
        f"{html.escape(notes[0], quote=False)}</span>"
        f"&lt;script type=\"text/javascript\"> jQuery('#{tip}').tooltip({{ tip: "
        f"'#footnote_plugin_tooltip_text_{pid}_2_1', tipClass: 'footnote_tooltip', effect: "
        "'fade', predelay: 0, fadeInSpeed: 200, delay: 400, fadeOutSpeed: 200, position: "
        "'top right', relative: true, offset: [10, 10], });</script>, et le vote aura lieu "
        "mardi.</p>\n<p>Nous publions notre analyse détaillée.</p>\n"
        '<div class="speaker-mute footnotes_reference_container"><div '
        'class="footnote_container_prepare"><p><span role="button" tabindex="0" '
        'class="footnote_reference_container_label pointer" onclick="footnote_expand_'
        f'collapse_reference_container_{pid}_2();">References</span></p></div><div '
        f'id="footnote_references_container_{pid}_2"><table class="footnotes_table '
        'footnote-reference-container"><caption class="accessibility">References</caption>'
        "<tbody>"
    )
    for n, note in enumerate(notes, 1):
        markup += (
            '<tr class="footnotes_plugin_reference_row"><th scope="row" '
            f'class="footnote_plugin_index"><a id="footnote_plugin_reference_{pid}_2_{n}" '
            f'href="#footnote_plugin_tooltip_{pid}_2_{n}">{n}</a></th><td '
            f'class="footnote_plugin_text">{html.escape(note, quote=False)}</td></tr>'
        )
    markup += (
        '</tbody></table></div></div>&lt;script type="text/javascript"> function '
        f"footnote_expand_reference_container_{pid}_2() {{ jQuery('#footnote_references_"
        f"container_{pid}_2').show(); }} function footnote_collapse_reference_container_"
        f"{pid}_2() {{ jQuery('#footnote_references_container_{pid}_2').hide(); }}</script>"
    )
    text = (
        f"{first}1{notes[0]}, et le vote aura lieu mardi.\n"
        "Nous publions notre analyse détaillée.\nReferences\nReferences\n"
        f"1 {notes[0]}\n2 {notes[1]}"
    )
    return markup, text


def _table(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """A plain data table after a paragraph."""
    rows = [("Nice", "4 200"), ("Marseille", "1 600"), ("Orléans", "900")]
    rng.shuffle(rows)
    markup = (
        "<p>Le nombre de caméras par ville, selon les chiffres des préfectures :</p>"
        "<table><thead><tr><th>Ville</th><th>Caméras</th></tr></thead><tbody>"
        + "".join(f"<tr><td>{a}</td><td>{b}</td></tr>" for a, b in rows)
        + "</tbody></table><p>Ces chiffres ne comptent pas les caméras privées.</p>"
    )
    text = (
        "Le nombre de caméras par ville, selon les chiffres des préfectures :\nVille Caméras\n"
        + "\n".join(f"{a} {b}" for a, b in rows)
        + "\nCes chiffres ne comptent pas les caméras privées."
    )
    return markup, text


def _nested_list(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """Lists inside lists, ordered and not."""
    markup = (
        "<p>Ce que le texte prévoit :</p><ol><li>Des caméras augmentées<ul>"
        "<li>dans les transports</li><li>aux abords des stades</li></ul></li>"
        "<li>Une expérimentation jusqu’en 2025<ul><li>prolongeable par décret</li></ul></li>"
        "<li>Aucune évaluation indépendante</li></ol>"
    )
    text = (
        "Ce que le texte prévoit :\nDes caméras augmentées\ndans les transports\n"
        "aux abords des stades\nUne expérimentation jusqu’en 2025\nprolongeable par décret\n"
        "Aucune évaluation indépendante"
    )
    return markup, text


def _pre_code(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """A command and a code sample in ``pre``/``code``, with characters that need escaping."""
    markup = (
        "<p>Pour vérifier vous-même :</p><pre><code>curl -s https://www.example.org/api "
        "| jq '.items[] | select(.score &gt; 3)'\n"
        'for ligne in open("journal.txt"):\n    print(ligne.strip())</code></pre>'
        "<p>Le <code>&lt;résultat&gt;</code> tient en une ligne.</p>"
    )
    text = (
        "Pour vérifier vous-même :\ncurl -s https://www.example.org/api | jq '.items[] | "
        'select(.score > 3)\'\nfor ligne in open("journal.txt"):\nprint(ligne.strip())\n'
        "Le <résultat> tient en une ligne."
    )
    return markup, text


def _figure(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """A figure with its caption between two paragraphs (as WordPress places them); the
    image's alt text is not text."""
    alt = rng.choice(["", "Une caméra sur un mât"])
    after = rng.choice(
        ["Ces dispositifs se multiplient dans les villes moyennes.", "La mairie n’a publié rien."]
    )
    markup = (
        "<p>Le préfet a autorisé l’expérimentation cette semaine.</p>"
        f'<figure class="wp-block-image"><img src="https://img.example.org/{c}.jpg" '
        f'alt="{alt}"><figcaption>Une caméra « augmentée » à Nîmes, en 2022.</figcaption>'
        f"</figure><p>{after}</p>"
    )
    text = (
        "Le préfet a autorisé l’expérimentation cette semaine.\n"
        f"Une caméra « augmentée » à Nîmes, en 2022.\n{after}"
    )
    return markup, text


def _video(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """A YouTube embed and its description."""
    vid = f"{c:011x}"[-11:]
    markup = (
        f'<p><iframe width="560" height="315" src="https://www.youtube.example/embed/{vid}" '
        'frameborder="0" allowfullscreen></iframe></p>'
        "<p>Conférence sur l’histoire du logiciel libre, enregistrée à Lyon.</p>"
    )
    return markup, "Conférence sur l’histoire du logiciel libre, enregistrée à Lyon."


def _micro(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """A microblog post of a few words with a hashtag link."""
    words = rng.choice(MICRO)
    markup = f'<p>{html.escape(words, quote=False)} <a href="{site}/tags/vsa">#VSA</a></p>'
    return markup, f"{words} #VSA"


def _empty(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """A feed entry with no content at all."""
    return "", ""


def _image_only(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """A post that is only an image (its alt text is not text)."""
    return f'<p><img src="https://img.example.org/p{c}.png" alt="Photo de la manif"></p>', ""


def _entities(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """Named and numeric character references, no-break spaces included."""
    markup = (
        "<p>L&#8217;&eacute;t&eacute; &amp; l&rsquo;hiver&nbsp;: 3 &lt; 5 &gt; 2, "
        "&laquo;&nbsp;citation&nbsp;&raquo; &copy;&#160;2024&hellip;</p>"
        "<p>&#x2014; Fin &#8212; de l&apos;extrait.</p>"
    )
    text = "L’été & l’hiver\xa0: 3 < 5 > 2, «\xa0citation\xa0» ©\xa02024…\n— Fin — de l'extrait."
    return markup, text


def _scripts(rng: random.Random, c: int, site: str) -> tuple[str, str]:
    """Right-to-left, CJK and emoji in one post."""
    lines = [
        "حرية التعبير حق أساسي للجميع.",
        "חופש הביטוי הוא זכות יסוד.",
        "言論の自由は基本的な権利です。",
        "网络中立性很重要。",
        "Bravo à toutes et tous 🎉👏🏽 🏳️‍🌈",
    ]
    markup = (
        f'<p dir="rtl">{lines[0]}</p><p dir="rtl" lang="he">{lines[1]}</p>'
        f'<p lang="ja">{lines[2]}</p><p lang="zh">{lines[3]}</p><p>{lines[4]}</p>'
    )
    return markup, "\n".join(lines)


SHAPES: dict[str, Shape] = {
    "link_post": _link_post,
    "link_only": _link_only,
    "wp_footnotes": _wp_footnotes,
    "table": _table,
    "nested_list": _nested_list,
    "pre_code": _pre_code,
    "figure": _figure,
    "video": _video,
    "micro": _micro,
    "empty": _empty,
    "image_only": _image_only,
    "entities": _entities,
    "scripts": _scripts,
}
# What each kind of autoblog typically carries (most shapes sit on two site types or more).
SHAPES_BY_TYPE: dict[str, list[str]] = {
    "generic": ["wp_footnotes", "table", "nested_list", "pre_code", "figure", "entities", "video"],
    "shaarli": ["link_post", "link_only", "link_post", "pre_code", "entities", "scripts"],
    "microblog": ["micro", "image_only", "scripts", "micro", "link_only", "empty"],
    "twitter": ["micro", "link_post", "scripts", "image_only", "empty", "micro"],
    "youtube": ["video", "figure", "video", "empty", "table", "nested_list"],
}


def shape_of(site_type: str, c: int) -> str | None:
    """The shape of ordinary article ``c`` of a shapes autoblog; one in each cycle stays prose."""
    names = SHAPES_BY_TYPE[site_type]
    k = c % (len(names) + 1)
    return names[k] if k < len(names) else None


# The broadened farm: every engine, every site type, shapes on. Autoblog 0 is La
# Quadrature du Net (generic, with the seed articles); 1-6 take the default types
# (generic, generic, shaarli, youtube, microblog) and twitter.
BROAD_FARM: dict = {
    "autoblogs": 7,
    "articles": 28,
    "engine": ["0.3.4", "0.3.0", "0.2", "0.1", "2025", "0.3.1"],
    "fault": ["*:shapes", "6:type=twitter"],
}


def repeated_line_runs(text: str, truth: str) -> list[list[str]]:
    """Runs of lines that follow a copy of themselves in ``text`` more often than in
    ``truth`` (one line counts from 20 characters: short labels legitimately recur)."""
    lines, wanted = text.split("\n"), truth.split("\n")
    found = []
    for n in range(1, len(lines) // 2 + 1):
        for i in range(len(lines) - 2 * n + 1):
            run = lines[i : i + n]
            if n == 1 and len(run[0]) < 20:
                continue
            if run == lines[i + n : i + 2 * n] and _count(lines, run) > _count(wanted, run):
                found.append(run)
    return found


def _count(lines: list[str], run: list[str]) -> int:
    n = len(run)
    return sum(1 for i in range(len(lines) - n + 1) if lines[i : i + n] == run)
