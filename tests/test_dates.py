"""Engine date formats -> ISO 8601 with offset; unknown text -> None, never a guessed Jan 1."""

from __future__ import annotations

import pytest

from crawler.corpus.dates import date_from_v01_slug, parse_engine_date, to_iso, utc_iso


@pytest.mark.parametrize(
    ("raw", "iso"),
    [
        ("lundi 23 janvier 2023 à 15:04", "2023-01-23T15:04:00+01:00"),
        ("lundi  2 janvier 2023 à 09:04", "2023-01-02T09:04:00+01:00"),  # padded day
        ("mardi 1er août 2023 à 08:00", "2023-08-01T08:00:00+02:00"),  # 1er, août, CEST
        ("jeudi 29 février 2024 à 23:59", "2024-02-29T23:59:00+01:00"),
        ("dimanche 31 décembre 2023 à 00:30", "2023-12-31T00:30:00+01:00"),
        ("\n        lundi 23 janvier 2023 à 15:04\n      ", "2023-01-23T15:04:00+01:00"),
        ("Monday  2 January 2023 à 15:04", "2023-01-02T15:04:00+01:00"),  # no fr locale
        ("Tuesday 1 August 2023 à 08:00", "2023-08-01T08:00:00+02:00"),
        ("2023-01-16T15:04:00+01:00", "2023-01-16T15:04:00+01:00"),  # 2025 engine
        ("2023-07-16T15:04:00", "2023-07-16T15:04:00+02:00"),  # no offset: Europe/Paris
        ("2023-07-16T13:04:00Z", "2023-07-16T13:04:00+00:00"),
        ("Mon, 23 Jan 2023 15:04:00 +0100", "2023-01-23T15:04:00+01:00"),  # 0.1 engine
        ("Tue, 01 Aug 2023 08:00:00 +0200", "2023-08-01T08:00:00+02:00"),
        ("Mon, 23 Jan 2023 14:04:00 GMT", "2023-01-23T14:04:00+00:00"),
    ],
)
def test_engine_formats(raw: str, iso: str) -> None:
    parsed = parse_engine_date(raw)
    assert parsed.iso == iso
    assert parsed.raw == raw


@pytest.mark.parametrize(
    "raw",
    ["", "   ", "Error happened!", "2023", "lundi 31 février 2023 à 10:00", "blurb 3 foo 2023"],
)
def test_unknown_text_is_none(raw: str) -> None:
    assert to_iso(raw) is None


def test_never_silent_january_first() -> None:
    # htmldate answers 2023-01-01 for these; we must not.
    for raw in ("mardi 1er août 2023 à 08:00", "vendredi 15 août 2025 à 12:00"):
        assert not to_iso(raw).startswith(raw[-16:-12] + "-01-01")  # type: ignore[union-attr]


def test_flags() -> None:
    assert "date_precision_minute" in parse_engine_date("lundi 23 janvier 2023 à 15:04").flags
    assert "weekday_mismatch" in parse_engine_date("mardi 23 janvier 2023 à 15:04").flags
    assert parse_engine_date("23 janvier 2023").flags == ["date_no_time"]
    assert parse_engine_date("Mon, 23 Jan 2023 15:04:00 +0100").flags == []


def test_dst_edges_use_paris_rules() -> None:
    # last Sunday of March / October 2023
    assert to_iso("samedi 25 mars 2023 à 12:00") == "2023-03-25T12:00:00+01:00"
    assert to_iso("dimanche 26 mars 2023 à 12:00") == "2023-03-26T12:00:00+02:00"
    assert to_iso("dimanche 29 octobre 2023 à 12:00") == "2023-10-29T12:00:00+01:00"


def test_helpers() -> None:
    assert date_from_v01_slug("20230123_150405_Titre") == "2023-01-23T15:04:05+01:00"
    assert date_from_v01_slug("Titre") is None
    assert utc_iso("2026-11-28T11:40:20.123456Z") == "2026-11-28T11:40:20Z"
    assert utc_iso("2026-11-28T12:40:20+01:00") == "2026-11-28T11:40:20Z"
