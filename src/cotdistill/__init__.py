"""cotdistill: chain-of-thought distillation as a reproducible DVC + MLflow pipeline.

Layers, top to bottom. A module imports only from its own layer or the layers below it, so a
DVC stage depends on the code beneath it and an edit higher up re-runs nothing below
(``tests/test_architecture.py`` reads this list and names any import against it):

1. ``__main__``, ``cli``: parse the command line and dispatch to a stage
2. ``stages``: one module per DVC stage: load, compute, save
3. ``curation``, ``serve``: choosing training data; the OpenAI-compatible server
4. ``student``: training, selecting, evaluating and predicting with a student
5. ``methods``: what each distillation method trains on and how it reads an answer
6. ``teachers``, ``datasets``: rationales from a teacher; datasets from their files
7. ``tracking``, ``lm``: MLflow; loading and running language models
8. ``params``: params.yaml, validated
9. ``answers``, ``atomic``, ``calculator``, ``catalog``, ``errors``, ``intervals``, ``jsonl``,
   ``layout``, ``plots``, ``prompts``, ``records``, and this package: the shared vocabulary
"""

__version__ = "0.1.0"
