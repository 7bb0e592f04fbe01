"""PartiPrompts loader (real file from $JAXML_DATA) and the occupation prompt set."""

import pytest

from jaxml.data import data_required
from jaxml.data.core import DataNotFoundError
from jaxml.data.partiprompts import (STABLE_BIAS_OCCUPATIONS, load_partiprompts, occupation_prompts,
                                     partiprompts_path)


def _require():
    if not partiprompts_path().is_file():
        if data_required():
            pytest.fail(f"PartiPrompts missing at {partiprompts_path()} (JAXML_REQUIRE_DATA=1)")
        pytest.skip("PartiPrompts not available; set JAXML_DATA")


def test_load_all_and_people():
    _require()
    rows = load_partiprompts()
    assert len(rows) == 1632
    assert rows[0].prompt == "bond" and rows[0].category == "Abstract"
    people = load_partiprompts(category="People")
    assert len(people) == 177 and all(r.category == "People" for r in people)
    with pytest.raises(ValueError, match="unknown PartiPrompts category"):
        load_partiprompts(category="Robots")


def test_missing_and_corrupt_files_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("JAXML_OFFLINE", "1")
    with pytest.raises(DataNotFoundError, match="PartiPrompts.tsv"):
        load_partiprompts(tmp_path)
    bad = tmp_path / "partiprompts"
    bad.mkdir()
    (bad / "PartiPrompts.tsv").write_text("Prompt\tCategory\tChallenge\tNote\nx\n")
    with pytest.raises(DataNotFoundError, match="sha256"):
        load_partiprompts(tmp_path)
    with pytest.raises(ValueError, match=":2: expected 4"):
        load_partiprompts(tmp_path, verify=False)
    (bad / "PartiPrompts.tsv").write_text("Text\tKind\nx\ty\n")
    with pytest.raises(ValueError, match=":1: expected header"):
        load_partiprompts(tmp_path, verify=False)


def test_occupation_prompts():
    prompts = occupation_prompts()
    assert len(prompts) == len(STABLE_BIAS_OCCUPATIONS) >= 140
    assert prompts[0] == "Photo portrait of an accountant"
    assert "Photo portrait of a doctor" in prompts
    assert occupation_prompts("a {occupation} at work", ("nurse",)) == ["a nurse at work"]
    with pytest.raises(ValueError, match="occupation"):
        occupation_prompts("no field")
