"""The OpenAI protocol: request bodies in, engine rows out; engine results in, answers out.

Why a module of its own: the HTTP endpoints (:mod:`cotdistill.serve.app`) and the Batch API
(:mod:`cotdistill.serve.batches`) answer the same two endpoints, so both parse a body into rows
and format the results with :class:`Protocol`, and both answer a bad body with the same
:class:`ApiError`. No HTTP here, no model either: the engine runs the rows.

Accounting: ``usage.prompt_tokens`` counts each prompt once (not once per choice),
``completion_tokens`` sums every choice's generated tokens, the end-of-sequence token included
(as :func:`cotdistill.lm.generation.generate` counts). ``finish_reason`` is "stop" (end of
sequence or a stop string; the stop string is cut from the text) or "length" (``max_tokens``).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

from cotdistill.lm.decoding import MAX_TOP_LOGPROBS, DecodeRow, row_seed
from cotdistill.serve.engine import Engine, RowResult

MAX_N = 128
MAX_TOKENS = 1 << 15  # the max_tokens bound of a model whose context length is unknown
MAX_STOPS, MAX_STOP_CHARS = 16, 512  # each stop string is searched for after every token
ENDPOINTS = ("/v1/completions", "/v1/chat/completions")


class ApiError(Exception):
    """An OpenAI-style error answer: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, *, param: str | None = None,
                 code: str | None = None, kind: str = "invalid_request_error",
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = (
            status, message, param, code, kind)
        self.headers = headers

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param,
                          "code": self.code}}


def parse_json(raw: bytes) -> Any:
    """The JSON value of a request body; whatever ``json`` refuses (bad bytes, nesting too deep
    for the parser, an integer of too many digits) is a 400, never a 500."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ApiError(400, "the request body is nested too deeply to parse") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit
        raise ApiError(400, f"the request body is not valid JSON: {exc}") from None


def _int(body: dict, name: str, default: int | None, *, low: int, high: int | None = None):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, f"{name} must be an integer", param=name)
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ApiError(400, f"{name} must be {bound}, got {value}", param=name)
    return value


def _temperature(body: dict) -> float:
    value = body.get("temperature")
    if value is None:
        return 1.0  # the OpenAI default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 2:
        raise ApiError(400, "temperature must be a number between 0 and 2", param="temperature")
    return float(value)


def _stop(body: dict) -> tuple[str, ...]:
    value = body.get("stop")
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ApiError(400, "stop must be a string or a list of strings", param="stop")
    if len(value) > MAX_STOPS or any(len(s) > MAX_STOP_CHARS for s in value):
        raise ApiError(400, f"stop takes at most {MAX_STOPS} strings of at most "
                       f"{MAX_STOP_CHARS} characters", param="stop")
    return tuple(s for s in value if s)


def _content(content: Any, index: int) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and \
                    isinstance(part.get("text", ""), str):
                parts.append(part.get("text", ""))
            else:
                raise ApiError(400, "only text content parts, with string text, are "
                               "supported",
                               param=f"messages[{index}].content")
        return "".join(parts)
    raise ApiError(400, "message content must be a string or a list of parts",
                   param=f"messages[{index}].content")


@dataclass
class Prepared:
    """A parsed request: its endpoint, prompts (token ids), and the rows to generate."""

    endpoint: str
    prompts: list[list[int]]
    max_tokens: int
    rows: list[DecodeRow]


class Protocol:
    """Parses requests into rows and formats results for the model ``model_name`` of ``engine``.

    Every check runs here, before a request's rows reach the engine: a bad request fails alone
    with 400 and never shares a generate call. ``max_rows`` bounds prompts x n per request.
    """

    def __init__(self, engine: Engine, model_name: str, *, max_rows: int | None = None) -> None:
        self.engine = engine
        self.model_name = model_name
        self.max_rows = max_rows
        self.created = int(time.time())

    def model_card(self) -> dict:
        """The served model as ``GET /v1/models`` lists it."""
        return {"id": self.model_name, "object": "model", "created": self.created,
                "owned_by": "cotdistill"}

    # --- parsing

    def check_model(self, body: dict) -> None:
        model = body.get("model")
        if model is not None and model != self.model_name:
            raise ApiError(404, f"The model {model!r} does not exist; this server serves "
                           f"{self.model_name!r}", param="model", code="model_not_found")

    @staticmethod
    def _messages(messages: Any) -> list[dict[str, str]]:
        if not isinstance(messages, list) or not messages:
            raise ApiError(400, "messages must be a non-empty list", param="messages")
        plain = []
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or not isinstance(message.get("role"), str):
                raise ApiError(400, "each message needs a role", param=f"messages[{i}]")
            plain.append({"role": message["role"],
                          "content": _content(message.get("content"), i)})
        return plain

    def _chat_prompt(self, plain: list[dict[str, str]]) -> list[int]:
        tokenizer = self.engine.tokenizer
        if getattr(tokenizer, "chat_template", None):
            try:
                with self.engine.tok_lock:
                    text = tokenizer.apply_chat_template(plain, tokenize=False,
                                                         add_generation_prompt=True)
            except Exception as exc:  # noqa: BLE001 - a template may refuse roles or order
                raise ApiError(400, f"the model's chat template refused the messages: {exc}",
                               param="messages") from None
            return self.engine.encode(text, special=False)
        lines = [f"{m['role']}: {m['content']}" for m in plain]
        return self.engine.encode("\n".join([*lines, "assistant:"]))

    @staticmethod
    def _prompt_list(prompt: Any) -> list[str] | list[list[int]]:
        """The prompts of a completions request, untokenised: texts or token-id lists."""
        def ids(value: Any) -> bool:
            return isinstance(value, list) and bool(value) and all(
                isinstance(t, int) and not isinstance(t, bool) for t in value)

        if isinstance(prompt, str):
            return [prompt]
        if isinstance(prompt, list) and prompt:
            if all(isinstance(p, str) for p in prompt):
                return list(prompt)
            if ids(prompt):
                return [list(prompt)]
            if all(ids(p) for p in prompt):
                return [list(p) for p in prompt]
        raise ApiError(400, "prompt must be a string, a list of strings, or token ids",
                       param="prompt")

    def _completion_prompts(self, prompts: list[str] | list[list[int]]) -> list[list[int]]:
        if all(isinstance(p, str) for p in prompts):
            return [self.engine.encode(p) for p in prompts]
        vocab = self.engine.vocab_size
        for p in prompts:
            bad = next((t for t in p if not 0 <= t < vocab), None)
            if bad is not None:
                raise ApiError(400, f"token id {bad} is outside the vocabulary "
                               f"(0 to {vocab - 1})", param="prompt")
        return prompts  # type: ignore[return-value]

    def prepare(self, endpoint: str, body: Any) -> Prepared:
        """Check ``body`` fully (shape, types, ranges, limits), then tokenise it into rows.

        The cheap checks run before tokenising, so an oversized request costs no tokenizer time.
        """
        if not isinstance(body, dict):
            raise ApiError(400, "the request body must be a JSON object")
        self.check_model(body)
        if body.get("stream"):
            raise ApiError(400, "streaming is not supported by this server", param="stream")
        context = self.engine.context
        high = MAX_TOKENS if context is None else None  # else the context check below
        chat = endpoint == "/v1/chat/completions"
        if chat:
            messages = self._messages(body.get("messages"))
            count = 1
            max_tokens = _int(body, "max_completion_tokens", None, low=1, high=high)
            if max_tokens is None:
                max_tokens = _int(body, "max_tokens", None, low=1, high=high)
            if body.get("logprobs"):
                top = _int(body, "top_logprobs", 0, low=0, high=MAX_TOP_LOGPROBS)
            else:
                if body.get("top_logprobs") is not None:
                    raise ApiError(400, "top_logprobs needs logprobs: true",
                                   param="top_logprobs")
                top = None
        else:
            if body.get("echo"):
                raise ApiError(400, "echo is not supported by this server", param="echo")
            if "prompt" not in body:
                raise ApiError(400, "prompt is required", param="prompt")
            texts_or_ids = self._prompt_list(body["prompt"])
            count = len(texts_or_ids)
            max_tokens = _int(body, "max_tokens", 16, low=1, high=high)
            top = _int(body, "logprobs", None, low=0, high=MAX_TOP_LOGPROBS)
        n = _int(body, "n", 1, low=1, high=MAX_N)
        seed = _int(body, "seed", 0, low=-(2**63), high=2**64)
        temperature = _temperature(body)
        stop = _stop(body)
        if self.max_rows is not None and count * n > self.max_rows:
            raise ApiError(400, f"this request asks for {count} prompt(s) x n={n} = "
                           f"{count * n} completions; this server takes at most "
                           f"{self.max_rows} per request", param="n",
                           code="too_many_completions")
        prompts = [self._chat_prompt(messages)] if chat else \
            self._completion_prompts(texts_or_ids)
        if any(not p for p in prompts):
            raise ApiError(400, "the prompt is empty", param="prompt")
        longest = max(len(p) for p in prompts)
        if max_tokens is None:  # chat without a limit: what the context leaves
            max_tokens = max(1, (context or longest + 256) - longest)
        if context is not None and longest + max_tokens > context:
            raise ApiError(400, f"This model's maximum context length is {context} tokens; "
                           f"the prompt has {longest} and max_tokens is {max_tokens}",
                           param="max_tokens", code="context_length_exceeded")
        rows = [DecodeRow(ids=p, temperature=temperature, stop=stop, seed=row_seed(seed, j, p),
                    top_logprobs=top) for p in prompts for j in range(n)]
        return Prepared(endpoint, prompts, max_tokens, rows)

    # --- formatting

    def _usage(self, prepared: Prepared, results: list[RowResult]) -> dict:
        prompt = sum(len(p) for p in prepared.prompts)
        completion = sum(r.completion_tokens for r in results)
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    def _token(self, token: int) -> str:
        return self.engine.token_text(token)

    def format(self, prepared: Prepared, results: list[RowResult]) -> dict:
        created = int(time.time())
        if prepared.endpoint == "/v1/chat/completions":
            choices = []
            for i, result in enumerate(results):
                logprobs = None
                if result.logprobs is not None:
                    logprobs = {"content": [
                        {"token": (text := self._token(token)),
                         "bytes": list(text.encode()), "logprob": lp,
                         "top_logprobs": [
                             {"token": (alt := self._token(a)), "bytes": list(alt.encode()),
                              "logprob": alp} for a, alp in top]}
                        for token, lp, top in result.logprobs], "refusal": None}
                choices.append({"index": i, "message": {"role": "assistant",
                                                        "content": result.text,
                                                        "refusal": None},
                                "logprobs": logprobs, "finish_reason": result.finish_reason})
            return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion",
                    "created": created, "model": self.model_name, "choices": choices,
                    "usage": self._usage(prepared, results), "system_fingerprint": None}
        choices = []
        for i, result in enumerate(results):
            logprobs = None
            if result.logprobs is not None:
                tokens, offsets, tops, position = [], [], [], 0
                for token, _, top in result.logprobs:
                    text = self._token(token)
                    tokens.append(text)
                    offsets.append(position)
                    position += len(text)
                    entry: dict[str, float] = {}
                    for alt, lp in top:  # two ids may print alike: the likelier one stays
                        entry.setdefault(self._token(alt), lp)
                    tops.append(entry)
                logprobs = {"tokens": tokens,
                            "token_logprobs": [lp for _, lp, _ in result.logprobs],
                            "top_logprobs": tops, "text_offset": offsets}
            choices.append({"index": i, "text": result.text, "logprobs": logprobs,
                            "finish_reason": result.finish_reason})
        return {"id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion",
                "created": created, "model": self.model_name, "choices": choices,
                "usage": self._usage(prepared, results)}
