"""The Chinese catalogue is complete (no empty or fuzzy entries) and its .mo is compiled from it.

Pure Python: a small .po reader here and Python's own msgfmt-compatible parse of the .mo
(`gettext.GNUTranslations`), so CI needs neither polib nor GNU gettext."""

from __future__ import annotations

import ast
import gettext
from pathlib import Path

CATALOGUE = Path(__file__).resolve().parents[1] / "docqa" / "locale" / "zh_Hans" / "LC_MESSAGES"


def po_entries(path: Path) -> list[dict]:
    """Entries of a .po file: msgid, msgid_plural, msgstr (or msgstr[n]), flags; obsolete ones skipped."""
    entries: list[dict] = []
    entry: dict = {}
    field = None

    def finish():
        if "msgid" in entry:
            entries.append(entry)

    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line:
            finish()
            entry, field = {}, None
        elif line.startswith("#~"):
            continue
        elif line.startswith("#,"):
            entry.setdefault("flags", set()).update(f.strip() for f in line[2:].split(","))
        elif line.startswith("#"):
            continue
        elif line.startswith('"'):
            entry[field] += ast.literal_eval(line)
        else:
            field, _space, value = line.partition(" ")
            entry[field] = ast.literal_eval(value)
    finish()
    return entries


def translations(entry: dict) -> list[str]:
    return [value for key, value in entry.items() if key.startswith("msgstr")]


def test_every_entry_is_translated_and_none_is_fuzzy():
    entries = po_entries(CATALOGUE / "django.po")
    assert len(entries) > 100
    messages = [e for e in entries if e["msgid"]]  # the header has an empty msgid
    untranslated = [e["msgid"] for e in messages if not all(translations(e))]
    fuzzy = [e["msgid"] for e in entries if "fuzzy" in e.get("flags", set())]
    assert not untranslated, f"untranslated: {untranslated[:10]}"
    assert not fuzzy, f"fuzzy: {fuzzy[:10]}"


def test_the_compiled_catalogue_matches_the_po_file():
    entries = [e for e in po_entries(CATALOGUE / "django.po") if e["msgid"]]
    with (CATALOGUE / "django.mo").open("rb") as mo:
        compiled = gettext.GNUTranslations(mo)
    stale = []
    for entry in entries:
        context = entry.get("msgctxt")
        if "msgid_plural" in entry:
            got = (
                compiled.npgettext(context, entry["msgid"], entry["msgid_plural"], 1)
                if context
                else compiled.ngettext(entry["msgid"], entry["msgid_plural"], 1)
            )
            want = entry["msgstr[0]"]
        else:
            got = compiled.pgettext(context, entry["msgid"]) if context else compiled.gettext(entry["msgid"])
            want = entry["msgstr"]
        if got != want:
            stale.append(entry["msgid"])
    assert not stale, f"django.mo is out of date (run compilemessages): {stale[:10]}"
