"""The CLI's error paths and the report, through real subprocesses / in-process calls."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jaxml.experiment.cli import main as cli_main
from jaxml.experiment.report import write_report

TINY = ["--set", "steps=40", "--set", "heat_d=20", "--set", "heat_mu=3", "--set", "n_test=50",
        "--set", "d=40,60,30", "--set", "mu_norm=3,1,10", "--set", "eval_every=20"]


def _jaxml(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "jaxml", *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONUNBUFFERED="1"))


def test_unknown_slug_exits_nonzero_and_lists_the_slugs(capsys):
    assert cli_main(["run", "nosuch"]) == 2
    err = capsys.readouterr().err
    assert "unknown experiment 'nosuch'" in err and "benign_attention" in err


def test_unknown_key_names_the_allowed_keys(capsys):
    assert cli_main(["run", "benign_attention", "--mode", "smoke", "--set", "unknown=1"]) == 2
    err = capsys.readouterr().err
    assert "unknown config key 'unknown'" in err and "heat_mu" in err and "steps" in err


def test_out_of_range_value_names_the_field_and_range(capsys):
    assert cli_main(["run", "benign_attention", "--mode", "smoke", "--set", "d=-5"]) == 2
    err = capsys.readouterr().err
    assert "'d' = -5 is out of range: valid range is [2, 100000]" in err


def test_bad_mode_is_named(capsys):
    assert cli_main(["run", "benign_attention", "--mode", "huge"]) == 2
    assert "unknown mode 'huge'" in capsys.readouterr().err


def test_unwritable_out_says_so(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli_main(["run", "benign_attention", "--mode", "smoke", "--out", str(blocker / "sub")]) == 5
    err = capsys.readouterr().err
    assert "cannot write to output folder" in err and "--out" in err


def test_list_shows_the_experiments():
    out = _jaxml("list")
    assert out.returncode == 0
    assert out.stdout.startswith("benign_attention") or "benign_attention " in out.stdout


def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tmp_path):
    ref, killed = tmp_path / "ref", tmp_path / "killed"
    slow = TINY + ["--set", "steps=400", "--set", "checkpoint_every=20"]
    r = _jaxml("run", "benign_attention", "--mode", "smoke", "--out", str(ref), *slow)
    assert r.returncode == 0, r.stderr[-3000:]
    proc = subprocess.Popen([sys.executable, "-m", "jaxml", "run", "benign_attention", "--mode", "smoke",
                             "--out", str(killed), *slow], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = killed / "checkpoints" / "balanced_seed0"
    deadline = time.time() + 400
    while time.time() < deadline and proc.poll() is None:
        if ckpt.exists() and any(p.name.isdigit() for p in ckpt.iterdir()):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (killed / "metrics.json").exists()
    r = _jaxml("run", "benign_attention", "--mode", "smoke", "--out", str(killed), "--resume", *slow)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "resumed from step" in (killed / "log.txt").read_text()
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((killed / "metrics.json").read_text())
    assert a == b


def test_reproduce_writes_a_report(tmp_path):
    out = tmp_path / "res"
    assert cli_main(["run", "benign_attention", "--mode", "smoke", "--out", str(out / "benign_attention" / "smoke"),
                     *TINY]) == 0
    for f in ("config.json", "metrics.json", "claims.json", "log.txt", "run.json", "heatmap.png",
              "attention_trajectories.png", "tables.md"):
        assert (out / "benign_attention" / "smoke" / f).exists(), f
    claims = json.loads((out / "benign_attention" / "smoke" / "claims.json").read_text())["claims"]
    assert {"name", "statement", "measured", "threshold", "holds"} <= set(claims[0])
    md, html = write_report([{"slug": "benign_attention", "title": "t", "out_dir": str(out / "benign_attention" / "smoke")},
                             {"slug": "broken", "title": "b", "error": "DataNotFoundError: missing"}], out, mode="smoke")
    text = md.read_text()
    assert "| benign_attention |" in text and "error: DataNotFoundError" in text
    assert "data:image/png;base64," in html.read_text()


_TINY_EXPERIMENT = '''"""A tiny experiment whose one claim holds."""
import dataclasses
from jaxml.experiment import Claim, ExperimentConfig, Result, param


@dataclasses.dataclass(frozen=True)
class Config(ExperimentConfig):
    x: int = param(1, lo=0, hi=10, help="a number")


def get_config(mode):
    return Config()


def main(cfg):
    return Result(metrics={"x": float(cfg.x)}, claims=[Claim.check("x_positive", "x > 0", cfg.x, 0, ">")])
'''


def test_reproduce_isolates_a_hanging_and_a_crashing_experiment(tmp_path):
    exps = tmp_path / "experiments"
    exps.mkdir()
    (exps / "good.py").write_text(_TINY_EXPERIMENT)
    (exps / "hang.py").write_text(_TINY_EXPERIMENT.replace("A tiny experiment whose one claim holds", "Hangs")
                                  .replace("    return Result(", "    import time\n    time.sleep(600)\n    return Result("))
    (exps / "crash.py").write_text(_TINY_EXPERIMENT.replace("A tiny experiment whose one claim holds", "Crashes")
                                   .replace("    return Result(", "    raise RuntimeError('boom')\n    return Result("))
    out = tmp_path / "res"
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "jaxml", "reproduce", "--mode", "smoke", "--timeout", "20", "--out",
                        str(out)], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, JAXML_EXPERIMENTS=str(exps), PYTHONUNBUFFERED="1"))
    assert r.returncode == 1, r.stderr[-3000:]
    assert time.time() - t0 < 200  # the hanging run was killed at its timeout, not waited for
    report = (out / "report.md").read_text()
    assert "| good | 1/1 |" in report
    assert "hang" in report and "timed out after 20 s" in report
    assert "crash" in report and "exited with code 1" in report
    assert json.loads((out / "good" / "smoke" / "claims.json").read_text())["claims"][0]["holds"]


def test_reproduce_rejects_a_non_positive_timeout(capsys):
    assert cli_main(["reproduce", "benign_attention", "--timeout", "0"]) == 2
    assert "--timeout must be a positive number of seconds" in capsys.readouterr().err
