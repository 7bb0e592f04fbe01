"""Attribute rebalancing and latent-variable guidance (FairT2I, arXiv 2502.03826, Sec. 3.2).

FairT2I treats an open sensitive attribute ``a`` as a latent variable,
``p(x | c) = sum_a q(a | c) p(x | c, a)``, with a target ``q`` that is uniform, a real-world
table (e.g. labour statistics) or user-specified. Two realisations:

* per-image sampling: draw ``a ~ q`` (jointly across categories, i.e. intersectionally) and
  generate from the bias-aware prompt ``c + a`` (``augment_prompt``);
* latent-variable guidance: at every denoising step replace the conditional noise prediction by
  the q-weighted mixture ``eps(x_t, c) := sum_a q(a) eps(x_t, c + a)``, with classifier-free
  guidance on top (Ho & Salimans, arXiv 2207.12598):
  ``eps_hat = eps(x_t, {}) + w (sum_a q(a) eps(x_t, c + a) - eps(x_t, {}))`` (``mix_noise``).

When the joint support is larger than ``max_components``, guidance uses ``max_components``
assignments drawn i.i.d. from ``q`` with equal weights (an unbiased Monte Carlo estimate of the
mixture); the paper does not say how it handles many intersectional combinations.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxml.fairt2i import lexicon as lx
from jaxml.fairt2i.detect import analyse_prompt
from jaxml.fairt2i.report import BiasReport

__all__ = [
    "TargetDistribution",
    "JointTarget",
    "sample_assignments",
    "assignment_indices",
    "augment_prompt",
    "guidance_components",
    "mix_noise",
]


def _normalise(weights: Mapping[str, float], where: str) -> dict[str, float]:
    bad = {k: v for k, v in weights.items() if not (isinstance(v, (int, float)) and v >= 0
                                                     and math.isfinite(v))}
    if bad:
        raise ValueError(f"{where}: weights must be finite and >= 0; got {bad}.")
    total = float(sum(weights.values()))
    if total <= 0:
        raise ValueError(f"{where}: weights sum to 0; give at least one positive weight.")
    return {k: float(v) / total for k, v in weights.items()}


@dataclass(frozen=True)
class JointTarget:
    """A joint target over the open axes of one report.

    Attributes:
      axes: axis names, in prompt-insertion order.
      values: per axis, its values.
      probs: joint probabilities, shape ``tuple(len(v) for v in values)``, summing to 1.
    """

    axes: tuple[str, ...]
    values: tuple[tuple[str, ...], ...]
    probs: np.ndarray

    @property
    def size(self) -> int:
        """Number of joint cells (intersectional combinations)."""
        return int(np.prod([len(v) for v in self.values])) if self.axes else 1

    def cells(self) -> list[tuple[dict[str, str], float]]:
        """Every joint assignment with its probability, in row-major order."""
        out = []
        for idx in itertools.product(*[range(len(v)) for v in self.values]):
            out.append(({a: self.values[i][j] for i, (a, j) in enumerate(zip(self.axes, idx))},
                        float(self.probs[idx]) if self.axes else 1.0))
        return out

    def marginal(self, axis: str) -> np.ndarray:
        """Marginal target probabilities of one axis."""
        i = self.axes.index(axis)
        return self.probs.sum(axis=tuple(k for k in range(len(self.axes)) if k != i))


class TargetDistribution:
    """Target ``q`` over attribute values: uniform, a CSV table, or custom weights.

    Per axis a marginal; axes are combined as a product (independent, intersectional sampling)
    unless a ``joint`` table over several axes is given. Axes the report leaves open but the
    target does not name are uniform over the report's candidate values; axes the target names
    but the prompt fixes are ignored (a stated attribute is never rebalanced).

    Args:
      marginals: axis -> {value: weight} (normalised per axis).
      joint: optional ``(axes, {(v1, v2, ...): weight})`` over several axes, overriding their
        marginals.
      per_term: optional person term -> marginals, taking precedence for prompts about that
        term (e.g. occupation-specific labour statistics).
    """

    def __init__(self, marginals: Mapping[str, Mapping[str, float]] | None = None, *,
                 joint: tuple[Sequence[str], Mapping[tuple[str, ...], float]] | None = None,
                 per_term: Mapping[str, Mapping[str, Mapping[str, float]]] | None = None) -> None:
        self.marginals = {lx.canonical_axis(a): _normalise(w, f"target axis {a!r}")
                          for a, w in (marginals or {}).items()}
        self.per_term = {t.lower(): {lx.canonical_axis(a): _normalise(w, f"target {t!r}/{a!r}")
                                     for a, w in m.items()} for t, m in (per_term or {}).items()}
        self.joint = None
        if joint is not None:
            axes, table = joint
            axes = tuple(lx.canonical_axis(a) for a in axes)
            for cell in table:
                if len(cell) != len(axes):
                    raise ValueError(f"joint target cell {cell!r} does not have one value per axis "
                                     f"{axes}.")
            self.joint = (axes, _normalise({k: v for k, v in table.items()}, "joint target"))

    @classmethod
    def uniform(cls) -> "TargetDistribution":
        """Uniform over each open axis's candidate values."""
        return cls()

    @classmethod
    def custom(cls, weights: Mapping[str, Mapping[str, float]]) -> "TargetDistribution":
        """User-given weights per axis, e.g. ``{"gender": {"male": 1, "female": 1}}``."""
        return cls(weights)

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> "TargetDistribution":
        """Read a table with header ``category,value,weight`` and an optional ``term`` column.

        Rows with an empty or absent ``term`` give the default marginals; rows with a term (an
        occupation or person word) give that term's marginals, e.g. labour statistics::

            term,category,value,weight
            nurse,gender,female,0.87
            nurse,gender,male,0.13
            ,gender,female,0.5

        Raises:
          FileNotFoundError / ValueError naming the path and the first bad line.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"target table {path} not found; write a CSV with header "
                                    "'term,category,value,weight'.")
        with open(path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            need = {"category", "value", "weight"}
            if reader.fieldnames is None or not need <= set(reader.fieldnames):
                raise ValueError(f"{path}:1: header must contain {sorted(need)} (and optionally "
                                 f"'term'); got {reader.fieldnames}.")
            default: dict[str, dict[str, float]] = {}
            per_term: dict[str, dict[str, dict[str, float]]] = {}
            for lineno, row in enumerate(reader, start=2):
                try:
                    w = float(row["weight"])
                except (TypeError, ValueError):
                    raise ValueError(f"{path}:{lineno}: weight {row['weight']!r} is not a number.")
                if not math.isfinite(w) or w < 0:
                    raise ValueError(f"{path}:{lineno}: weight must be finite and >= 0; got {w}.")
                cat, val = (row["category"] or "").strip(), (row["value"] or "").strip()
                if not cat or not val:
                    raise ValueError(f"{path}:{lineno}: empty category or value.")
                term = (row.get("term") or "").strip().lower()
                dest = per_term.setdefault(term, {}) if term else default
                dest.setdefault(cat, {})[val] = w
        return cls(default, per_term=per_term)

    def _marginals_for(self, report: BiasReport) -> dict[str, dict[str, float]]:
        out = dict(self.marginals)
        for term in report.person_terms:
            t = term.lower()
            for key in (t, lx.singularize(t)):
                if key in self.per_term:
                    out.update(self.per_term[key])
                    return out
        return out

    def for_report(self, report: BiasReport, axes_order: Sequence[lx.Axis] = lx.DEFAULT_AXES
                   ) -> JointTarget:
        """The joint target over the report's open axes.

        Args:
          report: a (validated) bias report.
          axes_order: axes whose ``order`` fixes the insertion order of attribute words; other
            axes follow in report order.

        Returns:
          a ``JointTarget`` (no axes when nothing is open).
        """
        order = {a.name: a.order for a in axes_order}
        names = sorted(report.categories, key=lambda a: (order.get(a, 100),
                                                         list(report.categories).index(a)))
        margs = self._marginals_for(report)
        values, probs = [], []
        for a in names:
            if a in margs:
                vals = tuple(margs[a])
                p = np.asarray([margs[a][v] for v in vals], np.float64)
            else:
                vals = tuple(report.categories[a])
                p = np.full(len(vals), 1.0 / len(vals))
            values.append(vals)
            probs.append(p)
        table = np.ones(())
        for p in probs:
            table = np.multiply.outer(table, p)
        if self.joint is not None and names:
            jaxes, jtab = self.joint
            if set(jaxes) <= set(names):
                # replace the product over jaxes by the given joint, keep the other marginals
                idx = [names.index(a) for a in jaxes]
                jvals = [tuple(dict.fromkeys(cell[k] for cell in jtab)) for k in range(len(jaxes))]
                for k, i in enumerate(idx):
                    values[i] = jvals[k]
                jt = np.zeros([len(v) for v in jvals])
                for cell, w in jtab.items():
                    jt[tuple(jvals[k].index(cell[k]) for k in range(len(jaxes)))] = w
                letters = "abcdefghijklmnop"[:len(names)]
                ops = [probs[i] for i in range(len(names)) if i not in idx] + [jt]
                subs = [letters[i] for i in range(len(names)) if i not in idx]
                subs.append("".join(letters[i] for i in idx))
                table = np.einsum(",".join(subs) + "->" + letters, *ops)
        table = table / table.sum()
        return JointTarget(tuple(names), tuple(values), table)


def sample_assignments(key: jax.Array, target: JointTarget, n: int) -> list[dict[str, str]]:
    """Draw ``n`` joint (intersectional) attribute assignments ``a ~ q``.

    Args:
      key: PRNG key (same key, same assignments).
      target: the joint target.
      n: number of draws.

    Returns:
      ``n`` dicts axis -> value (empty dicts when no axis is open).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0; got {n}.")
    if not target.axes:
        return [{} for _ in range(n)]
    idx = np.asarray(assignment_indices(key, target, n))
    cells = np.unravel_index(idx, target.probs.shape)
    return [{a: target.values[i][int(cells[i][k])] for i, a in enumerate(target.axes)}
            for k in range(n)]


def assignment_indices(key: jax.Array, target: JointTarget, n: int) -> jax.Array:
    """Flat joint-cell indices of ``n`` draws from ``q`` (row-major over ``target.values``)."""
    logits = jnp.log(jnp.asarray(target.probs.reshape(-1), jnp.float32) + 1e-38)
    return jax.random.categorical(key, logits, shape=(n,))


def _article_for(word: str) -> str:
    w = word.lower()
    if w.startswith(("uni", "eu", "one", "use", "usu")):
        return "a"
    if w.startswith(("hour", "honest", "honor", "heir")):
        return "an"
    return "an" if w[:1] in "aeiou" else "a"


def augment_prompt(prompt: str, report: BiasReport, assignment: Mapping[str, str]) -> str:
    """Bias-aware prompt ``c + a``: attribute words inserted before the first person term.

    ``"Photo portrait of a doctor"`` with ``{"age": "young", "gender": "female"}`` becomes
    ``"Photo portrait of a young female doctor"`` (the indefinite article is corrected:
    ``"an elderly doctor"``). Attribute words follow the assignment's order (``for_report``
    orders it age, ethnicity, gender). When no person term can be located in the text (an LLM
    may name one that is not a literal substring), the attributes are appended after a comma.

    Args:
      prompt: the original prompt.
      report: its bias report.
      assignment: axis -> value for open axes (fixed axes in it are rejected).

    Returns:
      the augmented prompt (the prompt itself for an empty assignment).
    """
    clash = set(assignment) & set(report.fixed)
    if clash:
        raise ValueError(f"refusing to rebalance {sorted(clash)}: the prompt states "
                         f"{ {k: report.fixed[k] for k in clash} }.")
    words = [v for v in assignment.values() if v]
    if not words:
        return prompt
    phrase = " ".join(words)
    start = None
    ana = analyse_prompt(prompt)
    if ana.person_spans and ana.person_spans[0][2] in [t.lower() for t in report.person_terms]:
        first = ana.person_spans[0]
        # char offset of token first[0]
        matches = list(re.finditer(r"[A-Za-z][A-Za-z'\-]*|[.,;:!?()\"]", prompt))
        start = matches[first[0]].start()
    else:
        for term in report.person_terms:
            m = re.search(r"\b" + re.escape(term) + r"\b", prompt, flags=re.IGNORECASE)
            if m:
                start = m.start()
                break
    if start is None:
        return f"{prompt.rstrip()}, {phrase}"
    before, after = prompt[:start], prompt[start:]
    m = re.search(r"(^|\s)(a|an|A|An)\s+$", before)
    if m:
        art = _article_for(phrase)
        if m.group(2)[0].isupper():
            art = art.capitalize()
        before = before[:m.start(2)] + art + " "
    return f"{before}{phrase} {after}"


def guidance_components(prompt: str, report: BiasReport, target: JointTarget, *,
                        max_components: int = 16, key: jax.Array | None = None
                        ) -> tuple[list[str], np.ndarray]:
    """The attribute-augmented prompts and weights of latent-variable guidance.

    Args:
      prompt: the original prompt.
      report: its bias report.
      target: the joint target over the open axes.
      max_components: the largest number of prompts mixed per step; a larger joint support is
        replaced by ``max_components`` i.i.d. draws from ``q`` with equal weights (needs ``key``).
      key: PRNG key for that Monte Carlo case.

    Returns:
      ``(prompts, weights)``, weights summing to 1 (``([prompt], [1.0])`` when nothing is open).
    """
    if max_components < 1:
        raise ValueError(f"max_components must be >= 1; got {max_components}.")
    if not target.axes:
        return [prompt], np.ones(1)
    cells = [(a, p) for a, p in target.cells() if p > 0]
    if len(cells) <= max_components:
        prompts = [augment_prompt(prompt, report, a) for a, _ in cells]
        w = np.asarray([p for _, p in cells])
        return prompts, w / w.sum()
    if key is None:
        raise ValueError(f"the joint target has {len(cells)} cells > max_components="
                         f"{max_components}; pass a PRNG key to sample components, or raise "
                         "max_components.")
    draws = sample_assignments(key, target, max_components)
    return ([augment_prompt(prompt, report, a) for a in draws],
            np.full(max_components, 1.0 / max_components))


def mix_noise(eps_uncond: jax.Array, eps_cond: jax.Array, weights: jax.Array,
              guidance_scale: float | jax.Array) -> jax.Array:
    """Latent-variable guidance with classifier-free guidance on top.

    ``eps_hat = eps_u + w (sum_k q_k eps_k - eps_u)`` (FairT2I Sec. 3.2; Ho & Salimans 2022).

    Args:
      eps_uncond: (B, ...) unconditional noise predictions.
      eps_cond: (B, K, ...) predictions for the K attribute-augmented prompts.
      weights: (B, K) mixture weights q (rows sum to 1).
      guidance_scale: CFG scale w (1 = no guidance beyond the mixture).

    Returns:
      (B, ...) guided noise prediction.
    """
    if eps_cond.shape[0] != eps_uncond.shape[0] or eps_cond.shape[2:] != eps_uncond.shape[1:]:
        raise ValueError(f"eps_cond {eps_cond.shape} must be (B, K) + eps_uncond.shape[1:] with "
                         f"eps_uncond {eps_uncond.shape}.")
    if weights.shape != eps_cond.shape[:2]:
        raise ValueError(f"weights {weights.shape} must be (B, K) = {eps_cond.shape[:2]}.")
    q = weights.reshape(weights.shape + (1,) * (eps_cond.ndim - 2)).astype(eps_cond.dtype)
    mixed = jnp.sum(q * eps_cond, axis=1)
    return eps_uncond + guidance_scale * (mixed - eps_uncond)
