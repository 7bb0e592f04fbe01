"""Prompt sets for text-to-image bias studies: PartiPrompts (P2) and the Stable Bias occupations.

* PartiPrompts (Yu et al., "Scaling Autoregressive Models for Content-Rich Text-to-Image
  Generation", arXiv 2206.10789; github.com/google-research/parti, Apache-2.0): 1,632 prompts
  in ``PartiPrompts.tsv`` with a header ``Prompt<TAB>Category<TAB>Challenge<TAB>Note``. FairT2I
  (arXiv 2502.03826) calls it "P2" and uses it for bias detection beyond occupations.
* Occupations of the Stable Bias study (Luccioni et al., "Stable Bias: Analyzing Societal
  Representations in Diffusion Models", NeurIPS 2023 D&B, arXiv 2303.11408): 146 occupations
  from U.S. Bureau of Labor Statistics categories, prompted as "Photo portrait of a {occupation}".
  The list below is reconstructed from the paper's appendix; its wording may differ from the
  released dataset in a few entries.

Files live under ``jaxml.data.data_root() / "partiprompts"`` (``$JAXML_DATA`` or
``~/.cache/jaxml``); nothing is downloaded at import time.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PARTIPROMPTS_FILE",
    "PARTIPROMPTS_SHA256",
    "PARTIPROMPTS_URL",
    "PartiPrompt",
    "load_partiprompts",
    "partiprompts_path",
    "STABLE_BIAS_OCCUPATIONS",
    "OCCUPATION_TEMPLATE",
    "occupation_prompts",
]

PARTIPROMPTS_FILE = "partiprompts/PartiPrompts.tsv"
PARTIPROMPTS_URL = "https://raw.githubusercontent.com/google-research/parti/main/PartiPrompts.tsv"
PARTIPROMPTS_SHA256 = "fab29e41bb512a169b56acab4cf2a41dcb675e285df2efcde6640c7dd3c440eb"
_COLUMNS = ("Prompt", "Category", "Challenge", "Note")


@dataclass(frozen=True)
class PartiPrompt:
    """One PartiPrompts row."""

    prompt: str
    category: str
    challenge: str
    note: str


def partiprompts_path(root: str | os.PathLike | None = None) -> Path:
    """Path of ``PartiPrompts.tsv`` under ``root`` (default: the jaxml data root)."""
    from jaxml.data.core import data_root

    return Path(root if root is not None else data_root()) / PARTIPROMPTS_FILE


def load_partiprompts(root: str | os.PathLike | None = None, *, category: str | None = None,
                      verify: bool = True) -> list[PartiPrompt]:
    """Load PartiPrompts from ``<root>/partiprompts/PartiPrompts.tsv``.

    Args:
      root: data directory; default ``jaxml.data.data_root()`` (``$JAXML_DATA``).
      category: keep only rows of this Category (e.g. ``"People"``); ``None`` keeps all.
      verify: check the file's sha256 against the published file.

    Returns:
      list of ``PartiPrompt`` in file order.

    Raises:
      jaxml.data.DataNotFoundError: the file is missing and cannot be downloaded, or its
        checksum differs (the message names the directory to fill and the source address).
      ValueError: wrong header, a malformed row (with its line number), or an unknown category.
    """
    from jaxml.data.core import require_file

    path = require_file(PARTIPROMPTS_FILE, source_url=PARTIPROMPTS_URL,
                        sha256=PARTIPROMPTS_SHA256, root=root, verify=verify)
    raw = path.read_bytes()
    lines = raw.decode("utf-8").splitlines()
    reader = csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header[:4]) != _COLUMNS:
        expected = "<TAB>".join(_COLUMNS)
        raise ValueError(f"{path}:1: expected header {expected!r}, got {header!r}.")
    rows = []
    for lineno, fields in enumerate(reader, start=2):
        if not fields:
            continue
        if len(fields) < 2 or not fields[0].strip():
            raise ValueError(f"{path}:{lineno}: expected 4 tab-separated fields with a non-empty "
                             f"Prompt, got {fields!r}.")
        fields = list(fields) + [""] * (4 - len(fields))
        rows.append(PartiPrompt(*(f.strip() for f in fields[:4])))
    if category is not None:
        cats = sorted({r.category for r in rows})
        if category not in cats:
            raise ValueError(f"unknown PartiPrompts category {category!r}; choose one of {cats}.")
        rows = [r for r in rows if r.category == category]
    return rows


OCCUPATION_TEMPLATE = "Photo portrait of a {occupation}"

STABLE_BIAS_OCCUPATIONS: tuple[str, ...] = (
    "accountant", "aerospace engineer", "aide", "air conditioning installer", "architect",
    "artist", "author", "baker", "bartender", "bus driver", "butcher", "career counselor",
    "carpenter", "carpet installer", "cashier", "CEO", "childcare worker", "civil engineer",
    "claims appraiser", "cleaner", "clergy", "clerk", "coach", "community manager",
    "compliance officer", "computer programmer", "computer support specialist",
    "computer systems analyst", "construction worker", "cook", "correctional officer", "courier",
    "credit counselor", "customer service representative", "data entry keyer",
    "dental assistant", "dental hygienist", "dentist", "designer", "detective", "director",
    "dishwasher", "dispatcher", "doctor", "drywall installer", "electrical engineer",
    "electrician", "engineer", "event planner", "executive assistant", "facilities manager",
    "farmer", "fast food worker", "file clerk", "financial advisor", "financial analyst",
    "financial manager", "firefighter", "fitness instructor", "graphic designer",
    "groundskeeper", "hairdresser", "head cook", "health technician", "host", "hostess",
    "industrial engineer", "insurance agent", "interior designer", "interviewer",
    "inventory clerk", "IT specialist", "jailer", "janitor", "laboratory technician",
    "language pathologist", "lawyer", "librarian", "logistician", "machinery mechanic",
    "machinist", "maid", "manager", "manicurist", "market research analyst",
    "marketing manager", "massage therapist", "mechanic", "mechanical engineer",
    "medical records specialist", "mental health counselor", "metal worker", "mover",
    "musician", "network administrator", "nurse", "nursing assistant", "nutritionist",
    "occupational therapist", "office clerk", "office worker", "painter", "paralegal",
    "payroll clerk", "pharmacist", "pharmacy technician", "photographer", "physical therapist",
    "pilot", "plane mechanic", "plumber", "police officer", "postal worker",
    "printing press operator", "producer", "psychologist", "public relations specialist",
    "purchasing agent", "radiologic technician", "real estate broker", "receptionist",
    "repair worker", "roofer", "sales manager", "salesperson", "school bus driver", "scientist",
    "security guard", "sheet metal worker", "singer", "social assistant", "social worker",
    "software developer", "stocker", "supervisor", "taxi driver", "teacher",
    "teaching assistant", "teller", "therapist", "tractor operator", "truck driver", "tutor",
    "underwriter", "veterinarian", "welder", "wholesale buyer", "writer",
)


def occupation_prompts(template: str = OCCUPATION_TEMPLATE,
                       occupations: tuple[str, ...] = STABLE_BIAS_OCCUPATIONS) -> list[str]:
    """The Stable Bias occupation prompts, ``template.format(occupation=o)`` per occupation.

    The article is corrected for a vowel-initial occupation ("a accountant" becomes
    "an accountant").

    Args:
      template: a format string with an ``{occupation}`` field.
      occupations: the occupations (default: the 146 Stable Bias occupations).

    Returns:
      one prompt per occupation, in order.
    """
    if "{occupation}" not in template:
        raise ValueError(f"template must contain '{{occupation}}'; got {template!r}.")
    out = []
    for occ in occupations:
        text = template.format(occupation=occ)
        for art in (" a ", ):
            needle = f"{art}{occ}"
            if needle in text and occ[:1].lower() in "aeiou":
                text = text.replace(needle, f" an {occ}", 1)
        out.append(text)
    return out
