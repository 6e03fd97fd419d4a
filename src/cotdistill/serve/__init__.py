"""An OpenAI-compatible HTTP server for a local ``transformers`` causal LM.

Why: the teacher stage talks to any OpenAI-compatible endpoint. To test that path for real
(HTTP, retries, the Batch API, the official ``openai`` client) without the internet, the project
serves its own local model over the OpenAI protocol on loopback. It is also a usable server for
small models on a laptop.

Run it::

    cotdistill serve --model builtin:SmolLM2-135M-Instruct --port 8000 --max-batch 8

then point any OpenAI client at ``http://127.0.0.1:8000/v1`` (any API key is accepted). The
``model`` field of requests must be the spec given to ``--model`` (``GET /v1/models`` lists it).
In tests use :func:`running_server`, which serves on a free loopback port in a background thread.

Endpoints: ``GET /v1/models``, ``POST /v1/completions``, ``POST /v1/chat/completions``, the Batch
API (``POST /v1/files``, ``GET /v1/files[/{id}[/content]]``, ``POST /v1/batches``,
``GET /v1/batches[/{id}]``, ``POST /v1/batches/{id}/cancel``) and ``GET /stats`` (also
``/v1/stats``): ``requests`` (HTTP requests to /v1/*), ``completions`` ({endpoint: direct
completion requests answered}), ``batch_lines`` (Batch API lines answered, not in
``completions``), ``batches``, ``generate_calls`` and ``generated_rows`` (model calls, rows),
``queued_rows`` and ``queued_batch_rows`` (interactive and Batch API rows queued or running).
No streaming, no ``echo``, ``top_p`` is ignored.

The modules, each importing only those above it:

- :mod:`.engine`: the model and the worker thread that batches rows into ``generate`` calls
  (batching and determinism are described there);
- :mod:`.protocol`: request bodies to rows, results to OpenAI answers, :class:`ApiError`
  (token accounting and logprobs are described there);
- :mod:`.batches`: the Batch API's files and batches;
- :mod:`.app`: the FastAPI app (:func:`create_app`) and :func:`running_server`.
"""

from cotdistill.serve.app import create_app, running_server

__all__ = ["create_app", "running_server"]
