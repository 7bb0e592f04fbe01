"""LLM bias-detection backends: OpenAI-compatible chat completions and local transformers LMs.

FairT2I (arXiv 2502.03826, Sec. 3.1) prompts an LLM to list the bias-prone categories of a
text-to-image prompt and candidate values for each. Both backends here send the same
instruction (``SYSTEM_PROMPT``), ask for JSON matching ``report.REPORT_JSON_SCHEMA``, and turn
whatever comes back into a validated ``BiasReport``:

1. parse the reply as JSON; if that fails, repair near-JSON (code fences, prose around the
   object, single quotes, trailing commas, Python literals) and parse again;
2. validate against the schema;
3. on a transport error (timeout, connection error, HTTP 429/5xx) or an unusable reply, retry
   up to ``max_retries`` times with exponential backoff;
4. if every attempt fails, fall back to the embedded lexicon detector and say so in
   ``report.backend`` (``"embedded (fallback: <reason>)"``).

Finally ``enforce_stated`` moves any axis the prompt states to ``fixed``. The API key is read
from an environment variable at call time, sent only in the Authorization header, and never
logged or stored in a report (errors are redacted).
"""

from __future__ import annotations

import ast
import json
import logging
import os
import re
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Callable

from jaxml.fairt2i import lexicon as lx
from jaxml.fairt2i.detect import EmbeddedDetector, enforce_stated
from jaxml.fairt2i.report import BiasReport, ReportSchemaError, report_from_json

__all__ = [
    "SYSTEM_PROMPT",
    "repair_json",
    "parse_report",
    "OpenAIChatDetector",
    "TransformersDetector",
]

log = logging.getLogger("jaxml.fairt2i.llm")

SYSTEM_PROMPT = (
    "You audit text-to-image prompts for social bias. Given a prompt, decide whether it depicts "
    "people. If it does, list the sensitive attribute categories (for example gender, "
    "ethnicity, age, body type, religion, disability) that the prompt leaves unspecified and "
    "that an image generator would fill in with a stereotype, and for each give 2 to 6 "
    "candidate values. Attributes the prompt states explicitly (\"a female doctor\", \"an old "
    "man\") go to \"fixed\" and must NOT appear in \"categories\". Answer with one JSON object "
    "and nothing else, with exactly these keys: {\"person_terms\": [words referring to people], "
    "\"categories\": {category: [values]}, \"fixed\": {category: value}, \"rationale\": "
    "one sentence}. If the prompt depicts no people, return empty lists and objects."
)


def repair_json(text: str) -> Any:
    """Parse near-JSON from an LLM reply.

    Tries, in order: strict JSON; the outermost ``{...}`` after stripping code fences and prose;
    the same with trailing commas removed; a Python-literal reading (single quotes,
    True/False/None).

    Args:
      text: the raw reply.

    Returns:
      the parsed object.

    Raises:
      ValueError: nothing parseable was found.
    """
    if not isinstance(text, str):
        raise ValueError(f"reply is not text: {type(text).__name__}")
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    body = re.sub(r"```(?:json|JSON)?", "", text)
    start, end = body.find("{"), body.rfind("}")
    if start < 0 or end <= start:
        raise ValueError("no JSON object in the reply")
    body = body[start:end + 1]
    candidates = [body, re.sub(r",\s*([}\]])", r"\1", body)]
    for cand in candidates:
        try:
            return json.loads(cand)
        except json.JSONDecodeError:
            continue
    py = re.sub(r"\btrue\b", "True", re.sub(r"\bfalse\b", "False",
                                            re.sub(r"\bnull\b", "None", candidates[-1])))
    try:
        return ast.literal_eval(py)
    except (ValueError, SyntaxError) as err:
        raise ValueError(f"unrepairable JSON ({err.__class__.__name__})") from None


def parse_report(prompt: str, reply: str, backend: str) -> BiasReport:
    """Reply text -> validated ``BiasReport`` (repairing near-JSON; raises on schema errors)."""
    obj = repair_json(reply)
    return report_from_json(prompt, obj, backend=backend)


def _redact(msg: str, secret: str | None) -> str:
    return msg.replace(secret, "***") if secret else msg


class _LLMBase:
    """Retry, repair, validate and fall back around a ``_complete(prompt) -> str`` method."""

    name = "llm"

    def __init__(self, *, max_retries: int, backoff: float, fallback: EmbeddedDetector | None,
                 axes: tuple[lx.Axis, ...]) -> None:
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0; got {max_retries}.")
        if backoff < 0:
            raise ValueError(f"backoff must be >= 0 seconds; got {backoff}.")
        self.max_retries = max_retries
        self.backoff = backoff
        self.axes = axes
        self.fallback = fallback if fallback is not None else EmbeddedDetector(axes)
        self.failures: list[str] = []

    def _secret(self) -> str | None:
        return None

    def _complete(self, prompt: str) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def detect(self, prompt: str) -> BiasReport:
        """Ask the LLM; retry with backoff; repair and validate; fall back if all fails."""
        reason = "no attempt"
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(self.backoff * (2 ** (attempt - 1)))
            try:
                reply = self._complete(prompt)
                return enforce_stated(parse_report(prompt, reply, self.name))
            except (ReportSchemaError, ValueError) as err:
                reason = f"invalid reply: {err}"
            except (urllib.error.HTTPError,) as err:
                reason = f"HTTP {err.code}"
                if err.code in (400, 401, 403, 404):
                    reason += " (not retried)"
                    break
            except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError,
                    OSError) as err:
                reason = f"transport error: {err.__class__.__name__}"
            reason = _redact(reason, self._secret())
            log.warning("%s attempt %d/%d failed: %s", self.name, attempt + 1,
                        self.max_retries + 1, reason)
        reason = _redact(reason, self._secret())
        self.failures.append(reason)
        rep = self.fallback.detect(prompt)
        return BiasReport(rep.prompt, rep.person_terms, rep.categories, rep.fixed, rep.rationale,
                          f"{rep.backend} (fallback: {reason})")


class OpenAIChatDetector(_LLMBase):
    """Bias detection by any OpenAI-compatible chat-completions endpoint (vLLM, llama.cpp,
    Ollama, hosted services).

    Args:
      base_url: e.g. ``"http://127.0.0.1:8000/v1"``; ``/chat/completions`` is appended.
      model: the model name the server expects.
      api_key_env: name of the environment variable holding the key (read at call time; no
        key is sent when it is unset).
      timeout: seconds per HTTP request.
      max_retries: retries after the first attempt.
      backoff: first retry delay in seconds, doubled each retry.
      temperature: sampling temperature (0: deterministic where the server allows).
      fallback: detector used when every attempt fails (default ``EmbeddedDetector``).
      axes: axes of the fallback detector.
    """

    def __init__(self, base_url: str, model: str, *, api_key_env: str = "JAXML_LLM_API_KEY",
                 timeout: float = 20.0, max_retries: int = 2, backoff: float = 0.5,
                 temperature: float = 0.0, fallback: EmbeddedDetector | None = None,
                 axes: tuple[lx.Axis, ...] = lx.DEFAULT_AXES) -> None:
        super().__init__(max_retries=max_retries, backoff=backoff, fallback=fallback, axes=axes)
        if not re.match(r"^https?://", base_url or ""):
            raise ValueError(f"base_url must start with http:// or https://; got {base_url!r}.")
        if timeout <= 0:
            raise ValueError(f"timeout must be > 0 seconds; got {timeout}.")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.api_key_env = api_key_env
        self.timeout = timeout
        self.temperature = temperature
        self.name = f"openai:{model}@{base_url.rstrip('/')}"

    def _secret(self) -> str | None:
        return os.environ.get(self.api_key_env) or None

    def _complete(self, prompt: str) -> str:
        body = json.dumps({
            "model": self.model, "temperature": self.temperature,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT},
                         {"role": "user", "content": f"Prompt: {prompt}"}],
        }).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        key = self._secret()
        if key:
            headers["Authorization"] = f"Bearer {key}"
        req = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            payload = json.loads(resp.read().decode("utf-8"))
        try:
            content = payload["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ValueError("response lacks choices[0].message.content") from None
        if not isinstance(content, str):
            raise ValueError("message content is not a string")
        return content


class TransformersDetector(_LLMBase):
    """Bias detection by a local transformers causal LM loaded from a folder.

    The system and user messages go through the tokenizer's chat template when it has one
    (plain "System/User/Assistant" text otherwise); decoding is greedy.

    Args:
      path: a local folder with a causal LM and its tokenizer.
      max_new_tokens: generation budget.
      max_retries: retries (a greedy model repeats itself, so 0 is the sensible default).
      fallback: detector used when the reply is unusable.
      axes: axes of the fallback detector.
      generate_fn: optional ``fn(text) -> reply`` replacing the model (tests, custom servers).
    """

    def __init__(self, path: str | os.PathLike | None = None, *, max_new_tokens: int = 256,
                 max_retries: int = 0, fallback: EmbeddedDetector | None = None,
                 axes: tuple[lx.Axis, ...] = lx.DEFAULT_AXES,
                 generate_fn: Callable[[str], str] | None = None) -> None:
        super().__init__(max_retries=max_retries, backoff=0.0, fallback=fallback, axes=axes)
        if path is None and generate_fn is None:
            raise ValueError("TransformersDetector needs a model folder (path) or a generate_fn.")
        if path is not None and not os.path.isdir(path):
            raise FileNotFoundError(f"no model folder at {path}; pass a local transformers "
                                    "causal-LM folder.")
        self.path = None if path is None else str(path)
        self.max_new_tokens = max_new_tokens
        self._generate_fn = generate_fn
        self._model = None
        self._tok = None
        self.name = f"transformers:{os.path.basename(self.path) if self.path else 'fn'}"

    def _load(self) -> None:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from transformers import AutoModelForCausalLM, AutoTokenizer

            self._tok = AutoTokenizer.from_pretrained(self.path)
            self._model = AutoModelForCausalLM.from_pretrained(self.path).eval()

    def _chat_text(self, prompt: str) -> str:
        msgs = [{"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Prompt: {prompt}"}]
        if self._tok is not None and getattr(self._tok, "chat_template", None):
            return self._tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        return f"System: {SYSTEM_PROMPT}\nUser: Prompt: {prompt}\nAssistant:"

    def _complete(self, prompt: str) -> str:
        if self._generate_fn is not None:
            return self._generate_fn(self._chat_text(prompt))
        import torch

        self._load()
        text = self._chat_text(prompt)
        inputs = self._tok(text, return_tensors="pt")
        with torch.no_grad():
            out = self._model.generate(**inputs, max_new_tokens=self.max_new_tokens,
                                       do_sample=False,
                                       pad_token_id=self._tok.pad_token_id or self._tok.eos_token_id)
        return self._tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
