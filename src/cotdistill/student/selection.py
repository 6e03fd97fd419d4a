"""Model selection on the validation split, scored with the answer library.

Every ``every`` optimizer steps (and after the last) the student generates answers for the
validation questions and is scored like the test evaluation scores it; the best checkpoint
(highest accuracy, earliest on ties) is kept and becomes the trained model. With a ``patience``
training stops early once that many scorings in a row bring no new best, so ``epochs`` is a
ceiling and each dataset trains about as long as it needs. The test split is never looked at:
Fine-tune-CoT's authors chose epochs on test, which flatters every figure.

With ``probe`` questions (a held-out task's, ``train.hparams.transfer_probe``) each scoring also
scores them, in a generation of their own: the cost of specialising, step by step
(``probe_history``). They never choose the checkpoint nor change a validation score.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from cotdistill import answers
from cotdistill.records import PreparedExample

log = logging.getLogger(__name__)


@dataclass
class ValidationSelection:
    examples: list[PreparedExample]
    prompt: Callable[[PreparedExample], str]  # the student's input (task and method format)
    read: Callable[[str, PreparedExample], str | None]  # output -> extracted answer
    every: int  # optimizer steps between scorings
    batch_size: int = 32
    max_new_tokens: int = 96
    patience: int | None = None  # scorings without a new best before training stops
    calculator: Callable[[PreparedExample], bool] = lambda example: False  # decode with it
    probe: list[PreparedExample] = field(default_factory=list)  # a held-out task's questions
    history: list[tuple[int, float]] = field(default_factory=list)  # (step, val accuracy)
    probe_history: list[tuple[int, float]] = field(default_factory=list)  # (step, probe acc.)
    best_step: int | None = None
    best_accuracy: float = -1.0
    best_state: dict | None = None  # the best checkpoint's weights
    stopped_at: int | None = None  # the step where early stopping ended training

    def record(self, step: int, accuracy: float) -> bool:
        """Note a scoring; True when it is a new best (its weights are worth keeping)."""
        self.history.append((step, accuracy))
        if accuracy > self.best_accuracy:
            self.best_accuracy, self.best_step = accuracy, step
            return True
        return False

    @property
    def since_best(self) -> int:
        """Scorings recorded after the best one."""
        return sum(1 for step, _ in self.history if step > (self.best_step or 0))

    @property
    def exhausted(self) -> bool:
        """Patience spent: the last ``patience`` scorings brought no new best."""
        if self.patience is None or self.best_step is None:
            return False
        return self.since_best >= self.patience

    def report(self, step: int, accuracy: float, probe: float | None = None) -> str:
        """One line on the scoring just recorded, for whoever watches a long run: the counts,
        the best so far and the patience left (MLflow and val.csv get the same figures later)."""
        n = len(self.examples)

        def count(share: float, total: int) -> str:
            return f"{round(share * total)}/{total}"

        line = f"validation at step {step}: {count(accuracy, n)} ({accuracy:.1%})"
        if self.best_step == step:
            line += ", a new best"
        else:
            line += f"; best {count(self.best_accuracy, n)} at step {self.best_step}"
            if self.patience is not None:
                left = self.patience - self.since_best
                line += (f"; {left} scoring{'s' if left != 1 else ''} of patience left"
                         if left > 0 else "; patience spent")
        if probe is not None:
            line += f"; held-out probe {count(probe, len(self.probe))}"
        return line

    def accuracy(self, model, tokenizer, precision: str = "fp32") -> float:
        """The validation accuracy."""
        return self._accuracy(self.examples, model, tokenizer, precision, "validation")

    def score(self, model, tokenizer, precision: str = "fp32") -> tuple[float, float | None]:
        """Validation accuracy and the probe's (None without one). The probe is generated
        apart: sharing a batch would change the padding, and in bf16 a validation answer."""
        accuracy = self.accuracy(model, tokenizer, precision)
        return accuracy, self._accuracy(self.probe, model, tokenizer, precision,
                                        "held-out probe") if self.probe else None

    def _accuracy(self, questions: list[PreparedExample], model, tokenizer, precision: str,
                  desc: str) -> float:
        from cotdistill.lm.generation import generate
        from cotdistill.prompts import student_text

        encoder_decoder = bool(model.config.is_encoder_decoder)
        prompts = [student_text(self.prompt(e), None, encoder_decoder)[0] for e in questions]
        outputs = generate(model, tokenizer, prompts,
                           max_new_tokens=self.max_new_tokens, batch_size=self.batch_size,
                           desc=desc, precision=precision,
                           calculator=[self.calculator(e) for e in questions])
        correct = [answers.is_correct(self.read(o.text, e), e.answer, e.answer_type)
                   for o, e in zip(outputs, questions)]
        return sum(correct) / len(correct) if correct else 0.0


def selection_callback(selection: ValidationSelection, tokenizer, on_score=None, *,
                       precision: str = "fp32"):
    """A ``TrainerCallback`` that scores on validation (generating in ``precision``), keeps
    each new best checkpoint's weights in ``selection.best_state`` (a CPU copy; not for ZeRO-3,
    whose weights are partitioned across ranks) and stops training when patience runs out."""
    from transformers import TrainerCallback

    class Selector(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            last = state.global_step >= state.max_steps
            if state.global_step % selection.every and not last:
                return
            was_training = model.training
            accuracy, probe = selection.score(model, tokenizer, precision)
            model.train(was_training)
            if probe is not None:
                selection.probe_history.append((state.global_step, probe))
            if on_score is not None:
                on_score(state.global_step, accuracy, probe)
            new_best = selection.record(state.global_step, accuracy)
            log.info(selection.report(state.global_step, accuracy, probe))
            if new_best:
                selection.best_state = {name: tensor.detach().to("cpu", copy=True)
                                        for name, tensor in model.state_dict().items()}
            elif selection.exhausted and not last:
                selection.stopped_at = state.global_step
                control.should_training_stop = True

    return Selector()
