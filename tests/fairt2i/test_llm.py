"""The OpenAI-compatible backend against a local fake server that misbehaves on purpose."""

import http.server
import json
import logging
import threading
import time

import pytest

from jaxml.fairt2i.llm import OpenAIChatDetector, TransformersDetector, repair_json

SECRET = "sk-test-SECRET-4242"
GOOD = {"person_terms": ["doctor"], "categories": {"gender": ["male", "female", "non-binary"],
                                                   "age": ["young", "elderly"]},
        "fixed": {}, "rationale": "occupation with unspecified demographics"}


class _Handler(http.server.BaseHTTPRequestHandler):
    script: list = []          # per request: "good", "malformed", "near", "500", "slow", "schema"
    seen: list = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        _Handler.seen.append({"auth": self.headers.get("Authorization"), "body": body})
        kind = _Handler.script.pop(0) if _Handler.script else "good"
        if kind == "500":
            self.send_response(500)
            self.end_headers()
            self.wfile.write(b"boom")
            return
        if kind == "slow":
            time.sleep(1.0)
        content = {"good": json.dumps(GOOD), "slow": json.dumps(GOOD),
                   "malformed": "{not json at all",
                   "near": "Sure! ```json\n{'person_terms': ['doctor'], 'categories': {'gender': "
                           "['male', 'female',],}, 'fixed': {}, 'rationale': 'ok',}\n```",
                   "schema": json.dumps({"bias": ["gender"]})}[kind]
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]})
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(payload.encode())
        except (BrokenPipeError, ConnectionResetError):
            pass


@pytest.fixture()
def server():
    _Handler.script, _Handler.seen = [], []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    srv.timeout = 0.5
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/v1"
    srv.shutdown()
    srv.server_close()


def _det(url, monkeypatch, **kw):
    monkeypatch.setenv("JAXML_TEST_KEY", SECRET)
    opts = dict(api_key_env="JAXML_TEST_KEY", timeout=0.4, max_retries=1, backoff=0.01)
    opts.update(kw)
    return OpenAIChatDetector(url, "fake-model", **opts)


def test_good_reply_is_parsed_and_key_is_sent(server, monkeypatch):
    rep = _det(server, monkeypatch).detect("a photo of a doctor")
    assert rep.backend.startswith("openai:fake-model")
    assert rep.categories["gender"] == ("male", "female", "non-binary")
    assert _Handler.seen[0]["auth"] == f"Bearer {SECRET}"
    assert _Handler.seen[0]["body"]["messages"][1]["content"].endswith("a photo of a doctor")


@pytest.mark.parametrize("script, expect_fallback", [
    (["malformed", "good"], False),     # retried after a malformed reply
    (["near"], False),                   # near-JSON repaired, no retry needed
    (["500", "good"], False),            # HTTP 500 retried
    (["slow", "good"], False),           # timeout retried
    (["schema", "schema"], True),        # wrong schema twice: fallback
    (["500", "500"], True),              # server down: fallback
    (["slow", "slow"], True),            # always too slow: fallback
])
def test_misbehaving_server_is_survived(server, monkeypatch, caplog, script, expect_fallback):
    _Handler.script = list(script)
    det = _det(server, monkeypatch)
    with caplog.at_level(logging.DEBUG, logger="jaxml"):
        rep = det.detect("a photo of a female doctor")
    # whatever happened, the stated attribute is never open
    assert "gender" not in rep.categories and rep.fixed.get("gender") == "female"
    assert rep.backend.startswith("embedded (fallback") == expect_fallback
    if expect_fallback:
        assert det.failures and set(rep.categories) == {"age", "ethnicity"}
    text = caplog.text + json.dumps(rep.to_dict()) + " ".join(det.failures)
    assert SECRET not in text


def test_retries_are_bounded(server, monkeypatch):
    det = _det(server, monkeypatch, max_retries=3)
    _Handler.script = ["500", "500", "500", "500"]
    rep = det.detect("a doctor")
    assert "fallback: HTTP 500" in rep.backend and len(_Handler.seen) == 4


def test_unreachable_endpoint_falls_back_quickly():
    det = OpenAIChatDetector("http://127.0.0.1:9/v1", "m", timeout=0.2, max_retries=1, backoff=0.0)
    t0 = time.time()
    rep = det.detect("a photo of a nurse")
    assert time.time() - t0 < 5 and "fallback" in rep.backend and rep.flagged


def test_bad_construction_arguments():
    with pytest.raises(ValueError, match="http"):
        OpenAIChatDetector("ftp://x", "m")
    with pytest.raises(ValueError, match="timeout"):
        OpenAIChatDetector("http://127.0.0.1:1/v1", "m", timeout=0)


def test_repair_json_variants():
    assert repair_json('{"a": 1}') == {"a": 1}
    assert repair_json('text before {"a": [1, 2,],} after') == {"a": [1, 2]}
    assert repair_json("```json\n{'a': True, 'b': None}\n```") == {"a": True, "b": None}
    with pytest.raises(ValueError):
        repair_json("no object here")


def test_transformers_backend_with_generate_fn_and_fallback():
    good = TransformersDetector(generate_fn=lambda text: json.dumps(GOOD))
    assert good.detect("a doctor").categories["age"] == ("young", "elderly")
    garbage = TransformersDetector(generate_fn=lambda text: "lorem ipsum")
    rep = garbage.detect("a doctor")
    assert rep.backend.startswith("embedded (fallback: invalid reply")
    with pytest.raises(FileNotFoundError):
        TransformersDetector("/nonexistent/model/folder")
