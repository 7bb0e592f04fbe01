"""jaxml._host.tune_malloc: the opt-in glibc malloc setting, its opt-outs, and when entry points apply it."""

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


def test_entry_points_leave_malloc_alone_unless_asked(monkeypatch):
    from jaxml import _host

    calls = []
    monkeypatch.setattr(_host, "tune_malloc", lambda: calls.append(1) or True)
    for value in (None, "0", "", "yes"):
        if value is None:
            monkeypatch.delenv("JAXML_MALLOC_TUNING", raising=False)
        else:
            monkeypatch.setenv("JAXML_MALLOC_TUNING", value)
        assert _host.tune_malloc_if_requested() is False
    assert calls == []
    monkeypatch.setenv("JAXML_MALLOC_TUNING", "1")
    assert _host.tune_malloc_if_requested() is True and calls == [1]
