"""Real text corpora from installed Debian packages; nothing is fetched at run time.

Every loader returns a list of documents (``str``), deterministic and in a fixed order.
Whitespace inside a document is normalized to single spaces: the generators work on
whitespace tokens and join them with spaces, so a real document and a generated one
are spelled the same way and layout (line breaks, tab indents) gives nothing away.

- ``bible``: the King James Version from ``bible-kjv`` (the ``bible`` command) and
  ``bible-kjv-text`` (its data). 31,102 verses; a document is up to
  ``VERSES_PER_DOCUMENT`` (3) consecutive verses of one chapter (10,770 documents,
  median 72 words). One verse (about 25 words) is short for the within-document signals
  (repetition, distinct n-grams, compression); three consecutive verses of one chapter
  stay one coherent passage, and chapters never mix.
- ``fortunes``: every fortune file of ``fortunes`` and ``fortunes-min`` under
  ``/usr/share/games/fortunes`` (not the ``.dat`` indexes, not the ``.u8`` links, not
  the offensive ``off/`` folder, not ``ascii-art``, which holds pictures rather than
  text). Entries are separated by lines holding only ``%``; one fortune is one document.
  Backspace overstriking is removed, empty and exact duplicate entries are dropped (the
  first copy kept, files read in name order): 15,090 documents,
  median 17 words (1 % over 189 words, the longest 425).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

VERSES_PER_DOCUMENT = 3
BIBLE_RANGE = "Gen1:1-Rev22:21"
BIBLE_VERSES = 31_102
FORTUNE_DIR = Path("/usr/share/games/fortunes")
FORTUNE_SKIP = frozenset({"ascii-art"})

_VERSE = re.compile(r"^([1-3]?[A-Za-z]+)(\d+):(\d+) (.*)$")
_SEPARATOR = re.compile(r"^%[ \t]*$", flags=re.MULTILINE)
_OVERSTRIKE = re.compile(r".\x08")


class CorpusMissing(RuntimeError):
    """A corpus's Debian package is not installed."""


@dataclass(frozen=True)
class CorpusSpec:
    name: str
    source: str
    load: Callable[[], list[str]]


def normalize(text: str) -> str:
    return " ".join(text.split())


def bible_verses() -> list[tuple[str, int, str]]:
    """``(book, chapter, text)`` for every verse, in canonical order."""
    if shutil.which("bible") is None:
        raise CorpusMissing(
            "the 'bible' command is missing: install the Debian packages bible-kjv and "
            "bible-kjv-text (apt-get install bible-kjv bible-kjv-text)"
        )
    # -f turns pretty-printing off: one "Ge1:1 text" line per verse.
    done = subprocess.run(["bible", "-f", BIBLE_RANGE], capture_output=True, text=True, check=False)
    verses = []
    for line in done.stdout.splitlines():
        match = _VERSE.match(line)
        if match:
            book, chapter, _, text = match.groups()
            verses.append((book, int(chapter), normalize(text)))
    if len(verses) != BIBLE_VERSES:
        raise CorpusMissing(
            f"'bible -f {BIBLE_RANGE}' gave {len(verses)} verses, not {BIBLE_VERSES} "
            f"(exit {done.returncode}: {done.stderr.strip()[:200]}); is the Debian package "
            "bible-kjv-text (the text data of bible-kjv) installed?"
        )
    return verses


def load_bible() -> list[str]:
    documents: list[str] = []
    chunk: list[str] = []
    current = None
    for book, chapter, text in bible_verses():
        if (book, chapter) != current or len(chunk) == VERSES_PER_DOCUMENT:
            if chunk:
                documents.append(" ".join(chunk))
            chunk, current = [], (book, chapter)
        chunk.append(text)
    if chunk:
        documents.append(" ".join(chunk))
    return documents


def fortune_files() -> list[Path]:
    if not FORTUNE_DIR.is_dir():
        raise CorpusMissing(
            f"{FORTUNE_DIR} is missing: install the Debian packages fortunes and "
            "fortunes-min (apt-get install fortunes fortunes-min)"
        )
    files = [
        p
        for p in sorted(FORTUNE_DIR.iterdir())
        if p.is_file()
        and not p.is_symlink()
        and p.suffix not in (".dat", ".u8")
        and p.name not in FORTUNE_SKIP
    ]
    names = {p.name for p in files}
    if "fortunes" not in names:
        raise CorpusMissing(
            f"{FORTUNE_DIR}/fortunes is missing: install the Debian package fortunes-min"
        )
    if len(files) < 10:
        raise CorpusMissing(
            f"only {len(files)} fortune files in {FORTUNE_DIR}: install the Debian package fortunes"
        )
    return files


def load_fortunes() -> list[str]:
    seen: set[str] = set()
    documents = []
    for path in fortune_files():
        raw = path.read_text(encoding="utf-8", errors="replace")
        for entry in _SEPARATOR.split(raw):
            text = normalize(_OVERSTRIKE.sub("", entry))
            if text and text not in seen:
                seen.add(text)
                documents.append(text)
    return documents


CORPORA: dict[str, CorpusSpec] = {
    "bible": CorpusSpec("bible", "Debian bible-kjv + bible-kjv-text (KJV)", load_bible),
    "fortunes": CorpusSpec("fortunes", "Debian fortunes + fortunes-min", load_fortunes),
}

_CACHE: dict[str, list[str]] = {}


def load(name: str) -> list[str]:
    if name not in CORPORA:
        raise ValueError(f"unknown corpus {name!r}; known: {', '.join(CORPORA)}")
    if name not in _CACHE:
        _CACHE[name] = CORPORA[name].load()
    return list(_CACHE[name])
