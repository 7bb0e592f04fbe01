"""Embedded detector, BiasReport validation, caching and the stated-attribute safeguard."""

import json

import pytest

from jaxml.data.partiprompts import STABLE_BIAS_OCCUPATIONS, occupation_prompts
from jaxml.fairt2i import lexicon as lx
from jaxml.fairt2i.detect import CachedDetector, EmbeddedDetector, analyse_prompt, detect, enforce_stated
from jaxml.fairt2i.report import BiasReport, ReportSchemaError, report_from_json


@pytest.mark.parametrize("prompt, terms, open_axes, fixed", [
    ("Photo portrait of a doctor", ("doctor",), {"age", "ethnicity", "gender"}, {}),
    ("a female doctor", ("doctor",), {"age", "ethnicity"}, {"gender": "female"}),
    ("a portrait of an old man", ("man",), {"ethnicity"}, {"gender": "male", "age": "elderly"}),
    ("a young girl with curly black hair", ("girl",), {"ethnicity"},
     {"gender": "female", "age": "young"}),
    ("a black dog jumping up to hug a woman", ("woman",), {"age", "ethnicity"}, {"gender": "female"}),
    ("a photo of an Asian nurse", ("nurse",), {"age", "gender"}, {"ethnicity": "East Asian"}),
    ("a young East Asian female police officer", ("police officer",), set(),
     {"age": "young", "ethnicity": "East Asian", "gender": "female"}),
    ("a teapot on a table", (), set(), {}),
    ("two firefighters and their trucks", ("firefighters",), {"age", "ethnicity", "gender"}, {}),
    ("a nurse reading her notes", ("nurse",), {"age", "ethnicity"}, {"gender": "female"}),
])
def test_embedded_detector_cases(prompt, terms, open_axes, fixed):
    rep = EmbeddedDetector().detect(prompt)
    assert rep.person_terms == terms
    assert set(rep.categories) == open_axes
    assert dict(rep.fixed) == fixed
    assert rep.flagged == bool(open_axes)
    for axis in open_axes:
        assert rep.categories[axis] == next(a.values for a in lx.DEFAULT_AXES if a.name == axis)


def test_every_occupation_prompt_is_flagged_with_all_axes_open():
    assert len(STABLE_BIAS_OCCUPATIONS) >= 100
    det = EmbeddedDetector()
    prompts = occupation_prompts()
    reports = [det.detect(p) for p in prompts]
    assert all(r.flagged for r in reports)
    # only occupations whose noun states gender (hostess, maid) have a fixed axis
    fixed = {p for p, r in zip(prompts, reports) if r.fixed}
    assert fixed == {"Photo portrait of a hostess", "Photo portrait of a maid"}


def test_custom_axis_values_count_as_stated_words():
    axis = lx.Axis("colour", ("blue", "orange"), order=0)
    det = EmbeddedDetector((axis,))
    assert set(det.detect("a photo of a doctor").categories) == {"colour"}
    rep = det.detect("a photo of a blue doctor")
    assert not rep.categories and rep.fixed == {"colour": "blue"}


def test_report_validation_errors_name_the_problem():
    with pytest.raises(ReportSchemaError, match="both open and fixed"):
        BiasReport("a female doctor", ("doctor",), {"gender": ["male", "female"]}, {"gender": "female"})
    with pytest.raises(ReportSchemaError, match="at least 2"):
        BiasReport("a doctor", ("doctor",), {"gender": ["male"]})
    with pytest.raises(ReportSchemaError, match="person_terms"):
        BiasReport("a doctor", (), {"gender": ["male", "female"]})
    with pytest.raises(ReportSchemaError, match="missing required"):
        report_from_json("a doctor", {"categories": {}}, backend="x")
    rep = report_from_json("a doctor", {"person_terms": ["doctor"],
                                        "categories": {"Race/Ethnicity": ["White", "Black"]},
                                        "fixed": {}, "rationale": "r"}, backend="x")
    assert rep.categories == {"ethnicity": ("White", "Black")}
    assert json.loads(json.dumps(rep.to_dict()))["categories"]["ethnicity"] == ["White", "Black"]


def test_enforce_stated_moves_stated_axes_out_of_categories():
    bad = BiasReport("an elderly female doctor", ("doctor",),
                     {"gender": ["male", "female"], "age": ["young", "old"],
                      "ethnicity": ["White", "Black"]}, {}, "llm said so", "llm")
    fixed = enforce_stated(bad)
    assert set(fixed.categories) == {"ethnicity"}
    assert fixed.fixed == {"gender": "female", "age": "elderly"}
    assert detect("an elderly female doctor").categories.keys() == {"ethnicity"}


def test_cached_detector_hits_and_persists(tmp_path):
    calls = []

    class Counting:
        name = "counting"

        def detect(self, prompt):
            calls.append(prompt)
            return EmbeddedDetector().detect(prompt)

    path = tmp_path / "cache.jsonl"
    cd = CachedDetector(Counting(), cache_file=path)
    a = cd.detect("a doctor")
    b = cd.detect("a doctor")
    assert a is b and calls == ["a doctor"] and cd.hits == 1
    cd2 = CachedDetector(Counting(), cache_file=path)
    assert cd2.detect("a doctor") == a and calls == ["a doctor"]


def test_analyse_prompt_plurals_and_multiword():
    ana = analyse_prompt("three police officers and a crowd of people")
    assert ana.person_terms == ("police officers", "crowd", "people")
    assert lx.singularize("women") == "woman" and lx.singularize("nurses") == "nurse"
