import dataclasses

import pytest

from jaxml.experiment import Claim, ConfigError, ExperimentConfig, Mode, apply_overrides, param


@dataclasses.dataclass(frozen=True)
class Cfg(ExperimentConfig):
    d: int = param(10, lo=1, hi=100, help="width")
    lr: float = param(0.1, lo=0.0, hi=1.0)
    sizes: tuple = param((1, 2), lo=1, hi=9)
    kind: str = param("a", choices=("a", "b"))
    flag: bool = param(False)


def test_overrides_parse_by_field_type():
    c = apply_overrides(Cfg(), ["d=20", "lr=0.5", "sizes=3,4,5", "kind=b", "flag=true", "seed=7"])
    assert (c.d, c.lr, c.sizes, c.kind, c.flag, c.seed) == (20, 0.5, (3, 4, 5), "b", True, 7)


def test_unknown_key_lists_the_allowed_keys():
    with pytest.raises(ConfigError, match="unknown config key 'nope'; allowed keys: d, flag, kind, lr, seed, sizes"):
        apply_overrides(Cfg(), ["nope=1"])


@pytest.mark.parametrize("item,match", [
    ("d=-5", r"'d' = -5 is out of range: valid range is \[1, 100\]"),
    ("d=2.5", "'d' must be an integer"),
    ("lr=abc", "'lr' must be a number"),
    ("sizes=1,10", r"'sizes' = 10 is out of range"),
    ("kind=c", "choose one of"),
    ("flag=maybe", "true or false"),
    ("novalue", "key=value"),
])
def test_bad_values_name_the_field_and_range(item, match):
    with pytest.raises(ConfigError, match=match):
        apply_overrides(Cfg(), [item])


def test_modes_and_claims():
    assert Mode.parse("SMOKE") is Mode.SMOKE
    with pytest.raises(ConfigError, match="smoke, quick, full"):
        Mode.parse("fast")
    assert Claim.check("a", "s", 0.96, 0.95).holds
    assert not Claim.check("a", "s", 0.94, 0.95).holds
    assert Claim.check("a", "s", 0.9, 1.0, "<").holds
    assert not Claim.check("a", "s", float("nan"), 0.0, ">=").holds
    assert Claim.check("a", "s", float("nan"), 0.0).to_json()["measured"] is None
