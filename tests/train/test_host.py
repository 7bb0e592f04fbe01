"""jaxml._host.tune_malloc: the glibc malloc defaults jaxml's entry points apply, and their opt-outs."""

import sys

import pytest

from jaxml._host import tune_malloc


def test_opt_out_by_environment(monkeypatch):
    monkeypatch.setenv("JAXML_MALLOC_TUNING", "0")
    assert tune_malloc() is False


def test_user_glibc_tunables_are_respected(monkeypatch):
    monkeypatch.delenv("JAXML_MALLOC_TUNING", raising=False)
    monkeypatch.setenv("GLIBC_TUNABLES", "glibc.malloc.arena_max=2")
    assert tune_malloc() is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")
def test_applies_on_glibc(monkeypatch):
    monkeypatch.delenv("JAXML_MALLOC_TUNING", raising=False)
    monkeypatch.delenv("GLIBC_TUNABLES", raising=False)
    import ctypes.util

    if "musl" in (ctypes.util.find_library("c") or ""):
        pytest.skip("not glibc")
    assert tune_malloc() is True
