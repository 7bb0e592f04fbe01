"""The structured output of bias detection: ``BiasReport`` and its JSON schema.

FairT2I (arXiv 2502.03826, Sec. 3.1) has an LLM return, for a text prompt, the bias-prone
categories and, for each, candidate attribute values the prompt leaves unspecified; attributes
the prompt already fixes must not be rebalanced. ``BiasReport`` is that answer, validated, with
the fixed attributes and a rationale kept beside it, and the backend that produced it.

JSON form (what LLM backends are asked for, see ``REPORT_JSON_SCHEMA``)::

    {"person_terms": ["doctor"],
     "categories": {"gender": ["male", "female", "non-binary"], "age": ["young", "elderly"]},
     "fixed": {"ethnicity": "East Asian"},
     "rationale": "..."}
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping

from jaxml.fairt2i.lexicon import canonical_axis

__all__ = ["BiasReport", "ReportSchemaError", "REPORT_JSON_SCHEMA", "report_from_json"]

REPORT_JSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["person_terms", "categories", "fixed", "rationale"],
    "properties": {
        "person_terms": {"type": "array", "items": {"type": "string"}},
        "categories": {"type": "object",
                       "additionalProperties": {"type": "array", "items": {"type": "string"},
                                                "minItems": 2}},
        "fixed": {"type": "object", "additionalProperties": {"type": "string"}},
        "rationale": {"type": "string"},
    },
}


class ReportSchemaError(ValueError):
    """A detector's output does not match ``REPORT_JSON_SCHEMA``."""


@dataclass(frozen=True)
class BiasReport:
    """Which social-bias categories a prompt leaves open, and which it fixes.

    Attributes:
      prompt: the text prompt analysed.
      person_terms: the words of the prompt that refer to people (empty: nothing to rebalance).
      categories: open axis -> candidate values (at least 2, distinct); these are rebalanced.
      fixed: axis -> value the prompt itself states; never rebalanced.
      rationale: a short human-readable explanation.
      backend: which detector produced the report (e.g. ``"embedded"``, ``"openai:MODEL"``,
        ``"embedded (fallback: ...)"``).
    """

    prompt: str
    person_terms: tuple[str, ...] = ()
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fixed: Mapping[str, str] = field(default_factory=dict)
    rationale: str = ""
    backend: str = "embedded"

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise ReportSchemaError(f"prompt must be a string; got {type(self.prompt).__name__}.")
        cats: dict[str, tuple[str, ...]] = {}
        for name, values in dict(self.categories).items():
            if not isinstance(name, str) or not name.strip():
                raise ReportSchemaError(f"category names must be non-empty strings; got {name!r}.")
            if isinstance(values, str) or not all(isinstance(v, str) and v.strip()
                                                  for v in values):
                raise ReportSchemaError(
                    f"category {name!r}: values must be a list of non-empty strings; got {values!r}.")
            vals = tuple(dict.fromkeys(v.strip() for v in values))
            if len(vals) < 2:
                raise ReportSchemaError(
                    f"category {name!r} needs at least 2 distinct candidate values to rebalance; "
                    f"got {values!r}.")
            cats[canonical_axis(name)] = vals
        fixed: dict[str, str] = {}
        for name, value in dict(self.fixed).items():
            if not isinstance(name, str) or not isinstance(value, str):
                raise ReportSchemaError(f"fixed attributes map strings to strings; got "
                                        f"{name!r}: {value!r}.")
            fixed[canonical_axis(name)] = value.strip()
        overlap = set(cats) & set(fixed)
        if overlap:
            raise ReportSchemaError(
                f"axes {sorted(overlap)} are both open and fixed; an attribute the prompt states "
                "must not be rebalanced (drop it from categories).")
        if cats and not self.person_terms:
            raise ReportSchemaError("a report with open categories must name the person_terms "
                                    "they refer to.")
        object.__setattr__(self, "person_terms", tuple(str(t) for t in self.person_terms))
        object.__setattr__(self, "categories", cats)
        object.__setattr__(self, "fixed", fixed)

    @property
    def flagged(self) -> bool:
        """True when the prompt refers to people and leaves at least one axis open."""
        return bool(self.categories)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (``prompt`` and ``backend`` included)."""
        return {"prompt": self.prompt, "person_terms": list(self.person_terms),
                "categories": {k: list(v) for k, v in self.categories.items()},
                "fixed": dict(self.fixed), "rationale": self.rationale, "backend": self.backend}

    def restrict(self, axes: tuple[str, ...] | None, *, drop: Mapping[str, str] | None = None
                 ) -> "BiasReport":
        """A copy keeping only ``axes`` among the open categories and moving ``drop`` to fixed."""
        drop = dict(drop or {})
        cats = {k: v for k, v in self.categories.items()
                if (axes is None or k in axes) and k not in drop}
        fixed = {**self.fixed, **drop}
        return BiasReport(self.prompt, self.person_terms if cats or fixed else (), cats, fixed,
                          self.rationale, self.backend)


def report_from_json(prompt: str, obj: Any, *, backend: str) -> BiasReport:
    """Validate a parsed JSON object against ``REPORT_JSON_SCHEMA`` and build a ``BiasReport``.

    Args:
      prompt: the prompt the object describes.
      obj: the parsed JSON (a dict).
      backend: name recorded in the report.

    Returns:
      the validated report.

    Raises:
      ReportSchemaError: naming the first field that does not match the schema.
    """
    if not isinstance(obj, dict):
        raise ReportSchemaError(f"expected a JSON object, got {type(obj).__name__}.")
    missing = [k for k in REPORT_JSON_SCHEMA["required"] if k not in obj]
    if missing:
        raise ReportSchemaError(f"missing required field(s) {missing}; expected keys "
                                f"{REPORT_JSON_SCHEMA['required']}.")
    terms = obj["person_terms"]
    if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
        raise ReportSchemaError(f"person_terms must be a list of strings; got {terms!r}.")
    cats = obj["categories"]
    if not isinstance(cats, dict):
        raise ReportSchemaError(f"categories must be an object of lists; got {cats!r}.")
    fixed = obj["fixed"]
    if not isinstance(fixed, dict):
        raise ReportSchemaError(f"fixed must be an object of strings; got {fixed!r}.")
    rationale = obj["rationale"]
    if not isinstance(rationale, str):
        raise ReportSchemaError(f"rationale must be a string; got {rationale!r}.")
    return BiasReport(prompt, tuple(terms), cats, fixed, rationale, backend)


def report_to_json(report: BiasReport) -> str:
    """Serialise a report to a JSON string."""
    return json.dumps(report.to_dict(), sort_keys=True)
