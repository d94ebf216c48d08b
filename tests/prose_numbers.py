"""Find numbers typed into a chapter's prose that look measured but come from no computation.

The rule (README, "Adding a chapter"): a measured-looking number in a markdown cell, that is

- a decimal (``4.24``, ``0.005``),
- a percentage (``92 %``, ``92.6%``), or
- a factor (``2.4×``, ``3x``, ``10 times``),

must be glued from a claim (``{glue:text}`name```), or stand in a sentence that cites its source
(``{cite}``), or be a setting the notebook's own code types literally (a momentum of ``0.1`` typed
in a code cell may be named in the prose; a percentage counts if the code types it as a fraction).
Numbering (``Exercise 2.1``, ``Fig. 4.2``, ``Section 3.3``), versions, inline code, links and
directive options are not prose numbers.
"""

from __future__ import annotations

import re

_ROLE = re.compile(r"\{[\w:-]+\}`[^`]*`")
_INLINE_CODE = re.compile(r"``.*?``|`[^`]*`")
_FENCE = re.compile(r"^(```|~~~).*?^\1\s*$", re.M | re.S)
_DIRECTIVE_OPTION = re.compile(r"^:[\w-]+:.*$", re.M)
_LABEL = re.compile(r"^\([\w-]+\)=\s*$", re.M)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_URL = re.compile(r"https?://\S+")
_NUMBERING = re.compile(
    r"(?:Exercises?|Fig(?:ure)?s?\.?|Tables?|Sections?|Chapters?|§|Alg(?:orithm)?\.?|Eqs?\.?|Appendix|"
    r"versions?|Python|PyTorch|torch|numpy|sphinx|v|arXiv:?|Part|Step|Steps|pages?|p\.)\s*\d+(?:\.\d+)*",
    re.I,
)
_DOTTED = re.compile(r"\d+\.\d+\.\d+(?:\.\d+)*")  # version numbers and dotted numbering
_CITED = re.compile(r"\{cite[:\w]*\}`")
_SENTENCE_END = re.compile(r"(?<=[.!?:;])\s+(?=[A-Z(*$])|\n\s*\n|\n(?=\s*[-*|#]|\s*\d+\.\s)")
_MEASURED = re.compile(
    r"(?<![\w.,])(?P<num>\d+(?:\.\d+)?)(?:\s?(?P<pct>\\?%)|\s?(?P<fac>×|x\b|times\b)|(?P<dec>))",
)
_CODE_NUMBER = re.compile(r"(?<![\w.])\d+(?:\.\d*)?(?:e[+-]?\d+)?|(?<![\w.])\.\d+(?:e[+-]?\d+)?", re.I)


def code_numbers(code_sources: list[str]) -> set[float]:
    """Every numeric literal typed in the notebook's code cells."""
    found: set[float] = set()
    for text in code_sources:
        for literal in _CODE_NUMBER.findall(text.replace("_", "")):
            try:
                found.add(round(float(literal), 12))
            except ValueError:
                pass
    return found


def _clean(markdown: str) -> str:
    text = _FENCE.sub(" ", markdown)
    text = _DIRECTIVE_OPTION.sub(" ", text)
    text = _LABEL.sub(" ", text)
    text = _LINK_TARGET.sub("]", text)
    text = _URL.sub(" ", text)
    return text


def _measured_in(sentence: str) -> list[tuple[str, float, str]]:
    """(token, value, kind) of each measured-looking number in one sentence of prose."""
    text = _ROLE.sub(" ", sentence)
    text = _INLINE_CODE.sub(" ", text)
    text = _DOTTED.sub(" ", text)
    text = _NUMBERING.sub(" ", text)
    hits = []
    for m in _MEASURED.finditer(text):
        num = m.group("num")
        if m.group("pct") is not None:
            hits.append((m.group(0), float(num), "percent"))
        elif m.group("fac") is not None:
            hits.append((m.group(0), float(num), "factor"))
        elif "." in num:
            hits.append((num, float(num), "decimal"))
    return hits


def unglued_numbers(markdown_cells: list[str], code_sources: list[str]) -> list[tuple[int, str, str]]:
    """The hand-typed measured-looking numbers of a notebook's prose.

    Parameters
    ----------
    markdown_cells : list of str
        The sources of the notebook's markdown cells, in order.
    code_sources : list of str
        The sources of its code cells (settings typed there may be named in the prose).

    Returns
    -------
    list of (cell index, token, sentence)
        ``cell index`` counts markdown cells from 0.
    """
    settings = code_numbers(code_sources)
    found = []
    for index, markdown in enumerate(markdown_cells):
        for sentence in _SENTENCE_END.split(_clean(markdown)):
            if _CITED.search(sentence):
                continue
            for token, value, kind in _measured_in(sentence):
                allowed = {round(value, 12)}
                if kind == "percent":
                    allowed.add(round(value / 100, 12))
                if allowed & settings:
                    continue
                found.append((index, token, " ".join(sentence.split())[:160]))
    return found
