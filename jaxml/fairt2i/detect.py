"""Bias detection: the embedded lexicon detector, the detector interface, caching, safeguards.

FairT2I (arXiv 2502.03826, Sec. 3.1) detects bias with an LLM: given a prompt, which social
categories (gender, race/ethnicity, age, ...) are open, with which candidate values, and which
the prompt already fixes. Every backend here returns a validated ``BiasReport``:

* ``EmbeddedDetector`` (default, no service): person words from a curated lexicon (the Stable
  Bias occupations and common person and group nouns, plurals included); an axis is fixed when
  an attribute word stands in a person's noun phrase (up to 4 words before the noun, not across
  "and/with/of/in/..." or punctuation), when a pronoun states it, or when the noun implies it
  ("grandmother"). With ``use_embeddings=True`` (the ``text`` extra), words outside the lexicon
  count as person words when their MiniLM embedding is nearer to the person lexicon than to a
  list of non-person anchors (top-3 mean cosine, margin ``embed_margin``).
* LLM backends in ``jaxml.fairt2i.llm``.

``enforce_stated`` re-applies the lexicon's stated-attribute check to any backend's report, so
no backend can rebalance an attribute the prompt states. ``CachedDetector`` memoises reports per
``(backend name, prompt)`` in memory and optionally in a JSON-lines file.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Iterable, Protocol, Sequence, runtime_checkable

import jax.numpy as jnp

from jaxml.fairt2i import lexicon as lx
from jaxml.fairt2i.report import BiasReport

__all__ = [
    "Detector",
    "EmbeddedDetector",
    "CachedDetector",
    "PromptAnalysis",
    "analyse_prompt",
    "enforce_stated",
    "detect",
]

_TOKEN = re.compile(r"[A-Za-z][A-Za-z'\-]*|[.,;:!?()\"]")
_BOUNDARY = frozenset({
    "and", "or", "with", "of", "in", "on", "at", "by", "to", "from", "for", "while", "who",
    "which", "that", "is", "are", "was", "were", "as", "next", "near", "behind", "holding",
    "wearing", "under", "over", "beside", "into", "onto", ".", ",", ";", ":", "!", "?", "(", ")",
    '"',
})
_STOPWORDS = frozenset({
    "a", "an", "the", "this", "that", "these", "those", "some", "many", "two", "three", "four",
    "five", "one", "several", "his", "her", "its", "their", "my", "your", "our", "very", "is",
    "are", "be", "been", "being", "it", "they", "them", "there", "here", "not", "no", "photo",
    "picture", "image", "portrait", "painting", "drawing", "illustration", "style", "view",
    "close-up", "closeup", "shot", "background", "front", "side", "top", "left", "right",
}) | _BOUNDARY
_MAX_NGRAM = 4


@runtime_checkable
class Detector(Protocol):
    """Anything with a ``name`` and ``detect(prompt) -> BiasReport``."""

    name: str

    def detect(self, prompt: str) -> BiasReport:
        """Analyse one prompt."""
        ...


class PromptAnalysis:
    """Lexicon analysis of one prompt: tokens, person-term spans, stated attributes."""

    def __init__(self, prompt: str, axes: Sequence[lx.Axis] = ()) -> None:
        self.prompt = prompt
        self.attr_words = dict(lx.ATTRIBUTE_WORDS)
        for axis in axes:  # an axis's own values state it too ("a blue doctor")
            for v in axis.values:
                self.attr_words.setdefault(v.lower(), (axis.name, v))
        self.tokens = [t.lower() for t in _TOKEN.findall(prompt)]
        self.person_spans: list[tuple[int, int, str]] = []  # (start, end, canonical term)
        self.stated: dict[str, str] = {}
        self._find_person_terms()
        self._find_stated()

    def _lookup(self, phrase: str) -> str | None:
        if phrase in lx.OCCUPATIONS or phrase in lx.PERSON_NOUNS or phrase in lx.GROUP_NOUNS:
            return phrase
        words = phrase.split(" ")
        last = lx.singularize(words[-1])
        single = " ".join(words[:-1] + [last])
        if single in lx.OCCUPATIONS or single in lx.PERSON_NOUNS:
            return phrase
        return None

    def _find_person_terms(self) -> None:
        toks, i = self.tokens, 0
        while i < len(toks):
            hit = None
            for n in range(min(_MAX_NGRAM, len(toks) - i), 0, -1):
                phrase = " ".join(toks[i:i + n])
                if self._lookup(phrase) is not None:
                    hit = (i, i + n, phrase)
                    break
            if hit:
                self.person_spans.append(hit)
                i = hit[1]
            else:
                i += 1

    def _attr_at(self, j: int) -> tuple[str, str] | None:
        for n in (3, 2, 1):
            if j - n + 1 < 0:
                continue
            phrase = " ".join(self.tokens[j - n + 1:j + 1])
            if phrase in self.attr_words:
                return self.attr_words[phrase]
        return None

    def _find_stated(self) -> None:
        for start, end, term in self.person_spans:
            words = term.split(" ")
            for key in (term, " ".join(words[:-1] + [lx.singularize(words[-1])]), words[-1],
                        lx.singularize(words[-1])):
                for axis, value in lx.NOUN_STATES.get(key, {}).items():
                    self.stated.setdefault(axis, value)
            for n_before in range(1, 5):  # the person's noun phrase: up to 4 words before
                j = start - n_before
                if j < 0 or self.tokens[j] in _BOUNDARY:
                    break
                hit = self._attr_at(j)
                if hit:
                    self.stated.setdefault(hit[0], hit[1])
                # a preceding person noun used as a modifier ("woman doctor")
                for axis, value in lx.NOUN_STATES.get(self.tokens[j], {}).items():
                    self.stated.setdefault(axis, value)
        if self.person_spans:
            for t in self.tokens:
                if t in lx.PRONOUN_STATES:
                    axis, value = lx.PRONOUN_STATES[t]
                    self.stated.setdefault(axis, value)

    @property
    def person_terms(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t for _, _, t in self.person_spans))

    def content_words(self) -> list[str]:
        """Words that are neither stopwords, attribute words nor already person terms."""
        inside = {k for s, e, _ in self.person_spans for k in range(s, e)}
        return [t for k, t in enumerate(self.tokens)
                if k not in inside and t not in _STOPWORDS and t not in self.attr_words
                and t not in lx.PRONOUN_STATES and len(t) > 2 and t.isalpha()]


def analyse_prompt(prompt: str, axes: Sequence[lx.Axis] = ()) -> PromptAnalysis:
    """Lexicon analysis of ``prompt`` (person terms and stated attributes).

    Args:
      prompt: the text prompt.
      axes: extra axes whose candidate values also count as attribute words.
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a string; got {type(prompt).__name__}.")
    return PromptAnalysis(prompt, axes)


def _build_report(prompt: str, terms: Sequence[str], stated: dict[str, str],
                  axes: Sequence[lx.Axis], backend: str, extra: str = "") -> BiasReport:
    if not terms:
        return BiasReport(prompt, (), {}, {}, "no person-referring words; nothing to rebalance."
                          + extra, backend)
    open_axes = {a.name: a.values for a in axes if a.name not in stated}
    fixed = {k: v for k, v in stated.items()}
    parts = [f"people: {', '.join(terms)}"]
    if fixed:
        parts.append("stated by the prompt: " + ", ".join(f"{k}={v}" for k, v in fixed.items()))
    if open_axes:
        parts.append("left open: " + ", ".join(open_axes))
    return BiasReport(prompt, tuple(terms), open_axes, fixed, "; ".join(parts) + "." + extra,
                      backend)


class EmbeddedDetector:
    """Lexicon detector, optionally extended by MiniLM word embeddings.

    Args:
      axes: sensitive axes and candidate values (default ``lexicon.DEFAULT_AXES``).
      use_embeddings: extend person detection with MiniLM (needs the ``text`` extra).
      embed_margin: required gap between the top-3 mean cosine to person words and to
        non-person anchors.
      encoder: a ``MiniLMEncoder`` (default the bundled one).
    """

    def __init__(self, axes: Sequence[lx.Axis] = lx.DEFAULT_AXES, *, use_embeddings: bool = False,
                 embed_margin: float = 0.04, encoder=None) -> None:
        names = [a.name for a in axes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate axis names in {names}.")
        self.axes = tuple(axes)
        self.use_embeddings = use_embeddings
        self.embed_margin = float(embed_margin)
        self._encoder = encoder
        self._anchor_cache = None
        self._word_cache: dict[str, bool] = {}
        self.name = "embedded" + ("+minilm" if use_embeddings else "") + (
            "" if self.axes == lx.DEFAULT_AXES else "[" + ",".join(names) + "]")

    def _anchors(self):
        if self._anchor_cache is None:
            if self._encoder is None:
                from jaxml.fairt2i.text import default_encoder
                self._encoder = default_encoder()
            persons = sorted(lx.OCCUPATIONS | lx.PERSON_NOUNS)
            self._anchor_cache = (self._encoder.encode(persons),
                                  self._encoder.encode(list(lx.NON_PERSON_ANCHORS)))
        return self._anchor_cache

    def person_like(self, words: Iterable[str]) -> dict[str, bool]:
        """MiniLM decision per word: nearer (top-3 mean cosine) to person words than to anchors."""
        words = [w for w in dict.fromkeys(words) if w not in self._word_cache]
        if words:
            per, non = self._anchors()
            emb = self._encoder.encode(words)
            sp = jnp.mean(jnp.sort(emb @ per.T, axis=1)[:, -3:], axis=1)
            sn = jnp.mean(jnp.sort(emb @ non.T, axis=1)[:, -3:], axis=1)
            for w, a, b in zip(words, sp.tolist(), sn.tolist()):
                self._word_cache[w] = a - b > self.embed_margin
        return self._word_cache

    def detect(self, prompt: str) -> BiasReport:
        """Analyse ``prompt`` (see module docstring)."""
        ana = analyse_prompt(prompt, self.axes)
        terms = list(ana.person_terms)
        extra = ""
        if self.use_embeddings:
            cands = ana.content_words()
            if cands:
                decided = self.person_like(cands)
                found = [w for w in cands if decided.get(w)]
                if found:
                    terms += [w for w in found if w not in terms]
                    extra = f" (MiniLM person words: {', '.join(found)})"
        return _build_report(prompt, terms, ana.stated, self.axes, self.name, extra)


def enforce_stated(report: BiasReport, axes: Sequence[lx.Axis] | None = None) -> BiasReport:
    """Move every axis the prompt states (lexicon check) from ``categories`` to ``fixed``.

    Applied to every backend's output so that no detector rebalances a stated attribute. With
    ``axes``, only those axes are kept among the open categories.

    Args:
      report: a report from any backend.
      axes: optional restriction of the open axes.

    Returns:
      the corrected report.
    """
    stated = analyse_prompt(report.prompt, axes or ()).stated
    drop = {k: v for k, v in stated.items() if k in report.categories}
    keep = None if axes is None else tuple(a.name for a in axes)
    if not drop and keep is None:
        return report
    return report.restrict(keep, drop=drop)


class CachedDetector:
    """Memoise a detector per ``(backend name, prompt)``; optionally persist as JSON lines.

    Args:
      detector: the wrapped detector.
      cache_file: optional path of a JSON-lines cache shared across runs (written atomically
        per line, append-only).
    """

    def __init__(self, detector: Detector, cache_file: str | os.PathLike | None = None) -> None:
        self.detector = detector
        self.name = detector.name
        self._mem: dict[tuple[str, str], BiasReport] = {}
        self._file = Path(cache_file) if cache_file is not None else None
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        if self._file is not None and self._file.is_file():
            for line in self._file.read_text().splitlines():
                try:
                    d = json.loads(line)
                    rep = BiasReport(d["prompt"], tuple(d["person_terms"]), d["categories"],
                                     d["fixed"], d["rationale"], d["backend"])
                    self._mem[(d["cache_key"], d["prompt"])] = rep
                except (ValueError, KeyError, TypeError):
                    continue  # a damaged line is recomputed, never trusted

    def detect(self, prompt: str) -> BiasReport:
        """Cached ``detector.detect(prompt)``."""
        key = (self.name, prompt)
        with self._lock:
            if key in self._mem:
                self.hits += 1
                return self._mem[key]
        report = self.detector.detect(prompt)
        with self._lock:
            self.misses += 1
            self._mem[key] = report
            if self._file is not None:
                self._file.parent.mkdir(parents=True, exist_ok=True)
                with open(self._file, "a", encoding="utf-8") as fh:
                    fh.write(json.dumps({"cache_key": self.name, **report.to_dict()}) + "\n")
        return report


_DEFAULT_DETECTOR: CachedDetector | None = None


def detect(prompt: str, detector: Detector | None = None) -> BiasReport:
    """Detect open bias categories of ``prompt``.

    Args:
      prompt: the text prompt.
      detector: any ``Detector``; default a cached ``EmbeddedDetector`` (lexicon only).

    Returns:
      a validated ``BiasReport`` in which no attribute stated by the prompt is open.
    """
    global _DEFAULT_DETECTOR
    if detector is None:
        if _DEFAULT_DETECTOR is None:
            _DEFAULT_DETECTOR = CachedDetector(EmbeddedDetector())
        detector = _DEFAULT_DETECTOR
    return enforce_stated(detector.detect(prompt))
