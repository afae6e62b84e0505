"""Case-insensitive text comparison, defined once: Unicode case folding of NFC text.

`fold` is what `equals`, `in`, `contains` and `regex` compare: the text normalised to NFC,
case-folded (full folding: `ß` reads as `ss`, capital and final sigma as small sigma) and NFC again.
`fold_pattern` rewrites a model's regular expression to be matched against folded text, so
that every regex engine (RE2 in Python and DuckDB, PostgreSQL's, Java's in Spark) reads the
same characters and none needs its own idea of Unicode case.
"""

from __future__ import annotations

import bisect
import re
import sys
import unicodedata
from functools import cache

# The case-insensitivity left to the regex engine covers what folding cannot reach (ASCII
# ranges and escapes such as `[A-Z]`, `\x41`); on folded text it adds no other match.
CASELESS = "(?i)"

_QUANTIFIER = re.compile(r"[*+?]|\{[0-9]+(?:,[0-9]*)?\}")
_META = frozenset("\\.^$|?*+()[]{}")
_CLASS_META = frozenset("\\]-[^")
# Escapes of an ASCII letter that are classes, assertions or controls, left to the engine.
_CONTROL_OR_CLASS = frozenset("dDwWsSbBAzCntrfva")


def fold(text: str) -> str:
    """`text` as conditions compare it: NFC, Unicode case folding, NFC again."""
    if text.isascii():
        # the same result, about twenty times faster (most data)
        return text.lower()
    return unicodedata.normalize("NFC", unicodedata.normalize("NFC", text).casefold())


@cache
def _changed() -> tuple[list[int], list[str]]:
    """Every code point that `fold` changes (sorted) and what it folds to."""
    points = [
        i for i in range(sys.maxunicode + 1) if not 0xD800 <= i < 0xE000 and fold(chr(i)) != chr(i)
    ]
    return points, [fold(chr(i)) for i in points]


@cache
def casefold_tables() -> tuple[str, str, tuple[tuple[str, str], ...]]:
    """Python's case folding as SQL can apply it to NFC text: translate() and replace() pairs.

    Returns (from, to, multi): `translate(s, from, to)` maps each character that folds to one
    character; `multi` lists (character, folded) for those that fold to several (`ß`, `ss`).
    Folding is idempotent, so the order in which these are applied does not matter.
    """
    singles_from: list[str] = []
    singles_to: list[str] = []
    multi: list[tuple[str, str]] = []
    for i in range(sys.maxunicode + 1):
        if 0xD800 <= i < 0xE000:
            continue
        c = chr(i)
        folded = c.casefold()
        if folded == c:
            continue
        if len(folded) == 1:
            singles_from.append(c)
            singles_to.append(folded)
        else:
            multi.append((c, folded))
    return "".join(singles_from), "".join(singles_to), tuple(multi)


def _escape(text: str, meta: frozenset[str] = _META) -> str:
    return "".join("\\" + c if c in meta else c for c in text)


def _folds_in(lo: int, hi: int) -> list[str]:
    """What the characters from `lo` to `hi` that folding changes fold to."""
    if hi - lo < 4096:
        return [f for i in range(lo, hi + 1) if (f := fold(chr(i))) != chr(i)]
    points, folded = _changed()
    return folded[bisect.bisect_left(points, lo) : bisect.bisect_right(points, hi)]


def _escaped(pattern: str, i: int) -> tuple[str | None, int]:
    """The literal character the escape at `pattern[i]` stands for (None: not a literal), end."""
    nxt = pattern[i + 1 : i + 2]
    if nxt == "x":
        braced = re.match(r"\{([0-9A-Fa-f]+)\}", pattern[i + 2 :])
        if braced is not None:
            code, end = int(braced.group(1), 16), i + 2 + braced.end()
        else:
            digits = re.match(r"[0-9A-Fa-f]{2}", pattern[i + 2 :])
            if digits is None:
                return None, i + 2
            code, end = int(digits.group(0), 16), i + 4
        if code > sys.maxunicode or 0xD800 <= code < 0xE000:
            return None, end
        return chr(code), end
    if nxt in ("p", "P"):
        name = re.match(r"\{[^}]*\}|.", pattern[i + 2 :], re.DOTALL)
        return None, i + 2 + (name.end() if name else 0)
    if nxt.isdigit():
        octal = re.match(r"[0-7]{1,3}", pattern[i + 1 :])
        return None, i + 1 + (octal.end() if octal else 1)
    if nxt in _CONTROL_OR_CLASS or (nxt.isascii() and nxt.isalpha()):
        return None, i + 2
    # an escaped punctuation mark (or any other character) stands for itself
    return (nxt or None), i + 2


def _fold_class(pattern: str, i: int) -> tuple[str, int]:
    """The [...] set at `pattern[i]` widened by the folded form of its members, and its end."""
    j, n = i + 1, len(pattern)
    negated = pattern[j : j + 1] == "^"
    if negated:
        j += 1
    start = j
    extra: list[str] = []  # folded forms of one character
    longer: list[str] = []  # folded forms of several characters (`ß` -> `ss`)

    def member() -> tuple[str | None, int]:
        if pattern[j] == "\\":
            return _escaped(pattern, j)
        return pattern[j], j + 1

    first = True
    while j < n and (pattern[j] != "]" or first):
        first = False
        lo, end = member()
        if lo is None:
            j = end
            continue
        j = end
        if pattern[j : j + 1] == "-" and j + 1 < n and pattern[j + 1] != "]":
            save = j
            j += 1
            hi, end = member()
            if hi is not None and ord(hi) >= ord(lo):
                j = end
                folds = _folds_in(ord(lo), ord(hi))
            else:
                j = save
                folds = [f for f in (fold(lo),) if f != lo]
        else:
            folds = [f for f in (fold(lo),) if f != lo]
        for f in folds:
            (extra if len(f) == 1 else longer).append(f)
    body = pattern[start:j]
    added = "".join(_escape(c, _CLASS_META) for c in dict.fromkeys(extra))
    text = f"[{'^' if negated else ''}{body}{added}]"
    if longer and not negated:
        # a set matches one character; `ß` in it must also match the `ss` it folds to
        alternatives = "|".join(_escape(s) for s in dict.fromkeys(longer))
        text = f"(?:{text}|{alternatives})"
    return text, min(j + 1, n)


def _group_opener(pattern: str, i: int) -> int:
    """The end of the `(` or `(?...` that opens a group at `pattern[i]`."""
    if pattern[i + 1 : i + 2] != "?":
        return i + 1
    if pattern[i + 2 : i + 4] in ("P<", "P="):
        close = pattern.find(">", i)
        return close + 1 if close >= 0 else len(pattern)
    flags = re.match(r"[A-Za-z-]*[:)]?", pattern[i + 2 :])
    return i + 2 + (flags.end() if flags else 0)


def fold_pattern(pattern: str) -> str:
    """A model's regular expression as it is matched against folded text, on every engine.

    The pattern is normalised to NFC; its literal characters (also escaped ones such as `\\xDF`)
    are folded as text is, and a [...] set also holds the folded form of each member.
    """
    p = unicodedata.normalize("NFC", pattern)
    out: list[str] = [CASELESS]
    flags = re.match(r"\(\?([A-Za-z]+)\)", p)
    if flags is not None:
        # one group of flags at the start: PostgreSQL reads no second one
        out = [f"(?i{flags.group(1).replace('i', '')})"]
        p = p[flags.end() :]
    run: list[str] = []  # literal characters, folded together so that NFC sees them whole

    def flush() -> None:
        if run:
            out.append(_escape(fold("".join(run))))
            run.clear()

    i, n = 0, len(p)
    while i < n:
        c = p[i]
        literal: str | None = None
        if c == "\\":
            literal, end = _escaped(p, i)
            if literal is None:
                flush()
                out.append(p[i:end])
            i = end
        elif c == "[":
            flush()
            text, i = _fold_class(p, i)
            out.append(text)
        elif c == "(":
            flush()
            end = _group_opener(p, i)
            out.append(p[i:end])
            i = end
        elif c in "|).^$":
            flush()
            out.append(c)
            i += 1
        elif (quantifier := _QUANTIFIER.match(p, i)) is not None:
            flush()
            out.append(quantifier.group(0))
            i = quantifier.end()
        else:
            literal, i = c, i + 1
        if literal is None:
            continue
        if _QUANTIFIER.match(p, i) is not None:
            # a quantifier repeats one character: fold it alone, as a group if it grows
            flush()
            folded = _escape(fold(literal))
            out.append(folded if len(fold(literal)) == 1 else f"(?:{folded})")
        else:
            run.append(literal)
    flush()
    return "".join(out)
