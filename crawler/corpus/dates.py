"""Dates as the autoblog engines print them, turned into ISO 8601 with an offset.

Generic date guessers (htmldate) do not know ``août`` or ``1er`` and silently answer
``YYYY-01-01``; the engines only ever print a handful of formats, so parse exactly those
and say ``None`` otherwise:

- 0.2 - 0.3.4: ``strftime("%A %e %B %Y à %H:%M")`` in the host's locale, i.e. French
  (``lundi 23 janvier 2023 à 15:04``, day padded with a space: ``lundi  2 janvier``)
  or English on hosts without the French locale (``Monday 2 January 2023 à 15:04``);
  the time is local to the farm: Europe/Paris;
- master after Feb 2025: ISO 8601 (``2023-01-16T15:04:00+01:00``);
- 0.1: RFC 822 (``Mon, 23 Jan 2023 15:04:00 +0100``).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

PARIS = ZoneInfo("Europe/Paris")

MONTHS = {
    # French (with and without accents: some hosts mangle them)
    "janvier": 1,
    "fevrier": 2,
    "mars": 3,
    "avril": 4,
    "mai": 5,
    "juin": 6,
    "juillet": 7,
    "aout": 8,
    "septembre": 9,
    "octobre": 10,
    "novembre": 11,
    "decembre": 12,
    # French abbreviations (%b)
    "janv": 1,
    "fevr": 2,
    "fev": 2,
    "avr": 4,
    "juil": 7,
    "sept": 9,
    "oct": 10,
    "nov": 11,
    "dec": 12,
    # English
    "january": 1,
    "february": 2,
    "march": 3,
    "april": 4,
    "may": 5,
    "june": 6,
    "july": 7,
    "august": 8,
    "september": 9,
    "october": 10,
    "november": 11,
    "december": 12,
    "jan": 1,
    "feb": 2,
    "mar": 3,
    "apr": 4,
    "jun": 6,
    "jul": 7,
    "aug": 8,
    "sep": 9,
}
WEEKDAYS = {
    "lundi": 0,
    "mardi": 1,
    "mercredi": 2,
    "jeudi": 3,
    "vendredi": 4,
    "samedi": 5,
    "dimanche": 6,
    "monday": 0,
    "tuesday": 1,
    "wednesday": 2,
    "thursday": 3,
    "friday": 4,
    "saturday": 5,
    "sunday": 6,
    "lun": 0,
    "mar": 1,
    "mer": 2,
    "jeu": 3,
    "ven": 4,
    "sam": 5,
    "dim": 6,
    "mon": 0,
    "tue": 1,
    "wed": 2,
    "thu": 3,
    "fri": 4,
    "sat": 5,
    "sun": 6,
}

# "[weekday[,]] D|1er [de] month[.] YYYY [à|a|at|,] HH:MM[:SS]"
LONG_FORM = re.compile(
    r"^(?:(?P<wd>[a-z]+)\.?,?\s+)?(?:le\s+)?(?P<day>\d{1,2})(?:er|st|nd|rd|th)?\s+(?:de\s+)?"
    r"(?P<month>[a-z]+)\.?\s+(?P<year>\d{4})"
    r"(?:\s*(?:,|a|at|-)?\s*(?P<hh>\d{1,2})\s*[:h]\s*(?P<mm>\d{2})(?::(?P<ss>\d{2}))?)?\s*$"
)
# "[weekday,] Month D[,] YYYY [at] HH:MM" (English %B %e)
ENGLISH_MDY = re.compile(
    r"^(?:(?P<wd>[a-z]+),?\s+)?(?P<month>[a-z]+)\.?\s+(?P<day>\d{1,2})(?:st|nd|rd|th)?,?\s+"
    r"(?P<year>\d{4})(?:\s*(?:,|at|a)?\s*(?P<hh>\d{1,2}):(?P<mm>\d{2})(?::(?P<ss>\d{2}))?)?\s*$"
)
ISO_FORM = re.compile(
    r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?$"
)
RFC822_HINT = re.compile(r"^(?:[A-Za-z]{3},\s*)?\d{1,2}\s+[A-Za-z]{3}\s+\d{2,4}\s+\d{1,2}:\d{2}")


@dataclass
class EngineDate:
    """A parsed engine date: ``iso`` is None when the text is not a date we know."""

    raw: str
    iso: str | None
    fmt: str | None = None  # "french", "english", "iso8601", "rfc822"
    flags: list[str] = field(default_factory=list)  # e.g. "date_no_time", "weekday_mismatch"


def _fold(text: str) -> str:
    """Lower case, accents removed, whitespace collapsed: ``Août`` -> ``aout``."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c))
    return " ".join(text.lower().split())


def _local(
    year: int, month: int, day: int, hh: int, mm: int, ss: int, tz: ZoneInfo
) -> datetime | None:
    try:
        return datetime(year, month, day, hh, mm, ss, tzinfo=tz)
    except ValueError:
        return None


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _from_words(m: re.Match[str], fmt: str, raw: str, tz: ZoneInfo) -> EngineDate | None:
    month = MONTHS.get(m["month"])
    if month is None:
        return None
    has_time = m["hh"] is not None
    dt = _local(
        int(m["year"]),
        month,
        int(m["day"]),
        int(m["hh"] or 0),
        int(m["mm"] or 0),
        int(m["ss"] or 0),
        tz,
    )
    if dt is None:
        return None
    # The engines print minutes only: seconds of the real date are not on the page.
    flags = ["date_precision_minute"] if has_time else ["date_no_time"]
    wd = m["wd"]
    if wd is not None:
        if wd not in WEEKDAYS:
            return None
        if WEEKDAYS[wd] != dt.weekday():
            flags.append("weekday_mismatch")
    return EngineDate(raw=raw, iso=_iso(dt), fmt=fmt, flags=flags)


def parse_engine_date(raw: str | None, tz: ZoneInfo = PARIS) -> EngineDate:
    """Parse any date format an autoblog engine prints; unknown text gives ``iso=None``.

    ``tz`` is the farm's zone, used only when the text carries no offset.
    """
    raw = raw or ""
    text = " ".join(raw.split())
    if not text:
        return EngineDate(raw=raw, iso=None)
    if ISO_FORM.match(text):
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return EngineDate(raw=raw, iso=None)
        flags = []
        if len(text) == 10:
            flags.append("date_no_time")
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=tz)
        return EngineDate(raw=raw, iso=_iso(dt), fmt="iso8601", flags=flags)
    if RFC822_HINT.match(text):
        when: datetime | None
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            when = None
        if when is not None:
            if when.tzinfo is None or text.endswith("-0000"):
                # RFC 2822: "-0000" means "offset unknown": the farm's local time.
                when = when.replace(tzinfo=tz)
            return EngineDate(raw=raw, iso=_iso(when), fmt="rfc822")
    folded = _fold(text)
    m = LONG_FORM.match(folded)
    if m:
        fmt = "french" if m["month"] in MONTHS and _is_french(m) else "english"
        parsed = _from_words(m, fmt, raw, tz)
        if parsed is not None:
            return parsed
    m = ENGLISH_MDY.match(folded)
    if m:
        parsed = _from_words(m, "english", raw, tz)
        if parsed is not None:
            return parsed
    return EngineDate(raw=raw, iso=None)


FRENCH_WORDS = set(list(MONTHS)[:21]) | set(list(WEEKDAYS)[:7])


def _is_french(m: re.Match[str]) -> bool:
    return m["month"] in FRENCH_WORDS or (m["wd"] or "") in FRENCH_WORDS


def to_iso(raw: str | None) -> str | None:
    """Shortcut: the ISO 8601 string (with offset) or None."""
    return parse_engine_date(raw).iso


def date_from_v01_slug(query: str, tz: ZoneInfo = PARIS) -> str | None:
    """0.1 permalinks start with ``YYYYMMDD_HHMMSS_``: a fallback when the page shows no date."""
    m = re.match(r"^(\d{4})(\d{2})(\d{2})_(\d{2})(\d{2})(\d{2})_", query)
    if not m:
        return None
    y, mo, d, hh, mi, ss = (int(x) for x in m.groups())
    dt = _local(y, mo, d, hh, mi, ss, tz)
    return _iso(dt) if dt else None


def utc_iso(value: datetime | str | None) -> str | None:
    """A crawl timestamp as ``YYYY-MM-DDTHH:MM:SSZ`` (WARC-Date style), whatever was given."""
    if value is None:
        return None
    if isinstance(value, str):
        given = value
        try:
            value = datetime.fromisoformat(given.replace("Z", "+00:00"))
        except ValueError:
            return given
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
