"""Seed 004's Table 5, reproduced by the pipeline: every figure from its own stage code.

For each of the seven datasets whose published Kojima et al. log holds training rationales
(SingleEq, AddSub, MultiArith, Date Understanding, Tracking Shuffled Objects, Last Letters,
Coin Flip), a small student is distilled with Fine-tune-CoT (D=1) on text-davinci-002's correct
rationales and, beside it, fine-tuned on the gold answers alone; the untrained student is
prompted zero-shot and zero-shot-CoT; text-davinci-002's own accuracy on the same test questions
is read from its log. On MultiArith and Last Letters, distilling step-by-step and two-stage CoT
(a first stage on the seven datasets' rationales pooled) are trained too. Everything is
evaluated on the dataset's whole published test split.

    python benchmarks/reproduce_table5.py                         # the whole table; resumes
    python benchmarks/reproduce_table5.py --datasets coin_flip --methods fine_tune_cot
    python benchmarks/reproduce_table5.py --seed 1                # seed noise (trained rows)
    python benchmarks/reproduce_table5.py --student gemma-3-270m  # another student
    python benchmarks/reproduce_table5.py --dry-run               # what would run, what is done
    python benchmarks/reproduce_table5.py --smoke --work-root /tmp/t5 --datasets coin_flip
    COTDISTILL_DATA_MIRROR=../shared/data/mirror python benchmarks/reproduce_table5.py  # offline
    python scripts/render_results.py                              # docs/results.md's tables

Each dataset runs the pipeline's own stages (``cotdistill prepare``, ``teacher`` with the replay
backend, ``curate``, ``train``, ``evaluate``, ``baseline``) as subprocesses in a work directory
of its own (``reproduction/<dataset>[-seed<N>]/``; two-stage CoT's pooled first stage in
``reproduction/_pooled[-seed<N>]/``) with ``params.yaml`` plus the overrides of
:data:`TABLE_SETTINGS`, so a figure is the same code as ``dvc repro``. On a GPU the same command
runs the whole table; the device is recorded, nothing else changes.

Rows are keyed by (dataset, student, method, seed); one that exists with the same settings is
skipped, so a long run can be spread over sessions. Stage outputs in a work directory are
reused when the settings that made them are unchanged (prepare / teacher / curate once per work
directory; a trained model whose row was not written yet). ``reproduction/results.json`` is
rewritten (atomically, under a lock) after every row, so a kill loses at most the row in
progress. Each row records the commit, the device, the settings, the precision used, the wall
time, n, the correct count, the accuracy and its Wilson 95% interval. ``docs/results.md``'s
tables are rendered from that file by ``scripts/render_results.py``; no figure there is typed by
hand.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime as dt
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # benchmarks/hardware.py
import hardware  # noqa: E402

from cotdistill.intervals import wilson_interval  # noqa: E402  (rows carry its interval)

RESULTS = REPO / "reproduction" / "results.json"
WORK_ROOT = REPO / "reproduction"
FORMAT = 2

# The seven datasets whose published text-davinci-002 log answers training questions (our names;
# cotdistill.teachers.kojima_logs.LOGS), in Table 5's order.
DATASETS = ("single_eq", "addsub", "multiarith", "date_understanding",
            "tracking_shuffled_objects", "last_letter_concatenation", "coin_flip")
DISPLAY = {"single_eq": "SingleEq", "addsub": "AddSub", "multiarith": "MultiArith",
           "date_understanding": "Date Understanding",
           "tracking_shuffled_objects": "Tracking Shuffled Objects",
           "last_letter_concatenation": "Last Letters", "coin_flip": "Coin Flip"}
# seed 004, Table 5: (best Fine-tune-CoT D=1 row of any <=250M student, best of any method) in %
PUBLISHED = {
    "single_eq": (6.58, 10.50), "addsub": (9.24, 13.40), "multiarith": (12.22, 19.40),
    "date_understanding": (83.78, 84.68), "tracking_shuffled_objects": (48.89, 75.10),
    "last_letter_concatenation": (50.00, 70.00), "coin_flip": (100.0, 100.0),
}
PUBLISHED_BIN = 250_000_000  # Table 5's student-size bin: <=250M parameters

TRAINED = ("fine_tune_cot", "answer_only")
BASELINES = ("zero_shot", "zero_shot_cot")
TEACHER = "teacher"
EXTRA = ("distill_step_by_step", "two_stage_cot")
EXTRA_DATASETS = ("multiarith", "last_letter_concatenation")
CALC = ("fine_tune_cot_calc",)  # the calculator inside decoding, on the arithmetic datasets
CALC_DATASETS = ("single_eq", "addsub", "multiarith")
MASK_RESULTS = "train.method_params.fine_tune_cot_calc.mask_results"
MIXED = ("fine_tune_cot_mixed",)  # Fu et al.'s three formats; with --few-shot only
MIXED_DATASETS = ("multiarith", "date_understanding")
METHODS = (*TRAINED, *BASELINES, TEACHER, *EXTRA, *CALC, *MIXED)  # row order; extras after all
TEACHER_NAME = "text-davinci-002"
STUDENT = "smollm2-135m"

# The table's settings, fixed before any run of the table (none was chosen by looking at a test
# figure), as params overrides; every row records those that shaped it:
# - To convergence on validation: epochs 6 is a ceiling, not a choice. Validation accuracy is
#   scored every 20 steps (params.yaml's select_every) on up to 40 validation questions per
#   dataset; training stops after 3 scorings without a new best and the best checkpoint on
#   validation is kept.
# - Room for the longest teacher rationale: measured on the curated training data of the seven
#   datasets with SmolLM2's tokenizer, before any training: the longest Fine-tune-CoT example
#   (question, rationale, answer, EOS) is 346 tokens (AddSub), the longest target (rationale,
#   answer, EOS) 254 (SingleEq); params.yaml's 192 / 96 are sized for Coin Flip's. So
#   max_length 384 truncates no example and max_new_tokens 256 lets the student write the
#   longest rationale it was trained on; validation generates as many tokens as test does. Each
#   row still counts the examples over these limits with its student's tokenizer.
# - precision auto: bf16 where torch reports native bf16 (CPU or GPU), else fp32 (each row
#   records which). Learning rate, batch size and the rest: params.yaml's (recorded per row).
TABLE_SETTINGS: dict[str, object] = {
    "train.hparams.epochs": 6,
    "train.hparams.max_steps": -1,
    "train.hparams.patience": 3,
    "train.hparams.select_every": 20,
    "train.hparams.select_max_examples": 40,
    "train.hparams.select_max_new_tokens": 256,
    "train.hparams.max_length": 384,
    "train.hparams.precision": "auto",
    "evaluate.max_new_tokens": 256,
    "evaluate.max_examples": None,  # the whole published test split
    "evaluate.precision": "auto",
}
HELD_OUT = ("svamp", "strategy_qa")  # evaluate.transfer_datasets of every row (see params_for)
HELD_OUT_EXAMPLES = 50  # the first 50 test questions of each
FROM_PARAMS = ("train.hparams.learning_rate", "train.hparams.batch_size",
               "train.hparams.grad_accum")  # params.yaml's, recorded in each trained row
# --smoke: proves the harness end to end in minutes; its rows never reach RESULTS
SMOKE_SETTINGS: dict[str, object] = {
    "train.hparams.max_steps": 2,
    "train.hparams.select_max_examples": 4,
    "train.hparams.select_max_new_tokens": 24,
    "evaluate.max_examples": 4,
    "evaluate.max_new_tokens": 24,
}
# ---------------------------------------------------------------------------------------------
# rows and the results file


def row_key(row: dict) -> tuple:
    """A row's identity; legacy rows (an earlier format's figures, kept for the record) are
    never matched by a new run, so they are neither skipped for nor replaced by one."""
    return (row["dataset"], row["student"], row["method"], row["seed"], bool(row.get("legacy")),
            row.get("variant"))


def sort_key(row: dict) -> tuple:
    dataset = row["dataset"]
    return (bool(row.get("legacy")),
            DATASETS.index(dataset) if dataset in DATASETS else len(DATASETS), dataset,
            row["method"] == TEACHER, row["student"] != STUDENT, row["student"],
            METHODS.index(row["method"]) if row["method"] in METHODS else len(METHODS),
            -1 if row["seed"] is None else row["seed"])


def load_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise SystemExit(f"{path}: not a results file of format {FORMAT}")
    return data["rows"]


def dump_rows(rows: list[dict]) -> str:
    document = {
        "about": "Written by benchmarks/reproduce_table5.py, one row per (dataset, student, "
                 "method, seed); docs/results.md's tables are rendered from it by "
                 "scripts/render_results.py. Not edited by hand.",
        "format": FORMAT,
        "rows": sorted(rows, key=sort_key),
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def upsert(rows: list[dict], row: dict) -> list[dict]:
    """``rows`` with ``row`` in place of the one with its key (or added)."""
    return [r for r in rows if row_key(r) != row_key(row)] + [row]


def find(rows: list[dict], key: tuple) -> dict | None:
    return next((r for r in rows if row_key(r) == key), None)


@contextlib.contextmanager
def locked(path: Path):
    """An exclusive lock beside ``path``: two harness runs (another seed, another student) can
    share one results file."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f".{path.name}.lock"), "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def save_row(path: Path, row: dict) -> None:
    """Add or replace ``row`` in the results file (re-read under the lock, written whole)."""
    with locked(path):
        write_atomic(path, dump_rows(upsert(load_rows(path), row)))


# ---------------------------------------------------------------------------------------------
# what a row records besides its figures


def now() -> str:
    return dt.datetime.now().strftime("%H:%M:%S")


def say(message: str) -> None:
    print(f"{now()} {message}", flush=True)


def commit() -> str:
    """HEAD, with "-dirty" when src/ has uncommitted changes (the code that made the figure)."""
    def git(*arguments: str) -> str:
        return subprocess.run(["git", *arguments], cwd=REPO, capture_output=True, text=True,
                              check=True).stdout.strip()
    try:
        head = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--", "src")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def parameter_count(model_dir: Path | str | None) -> int | None:
    """Parameters of a saved model, from its safetensors headers (no weights are read)."""
    if model_dir is None or not Path(model_dir).is_dir():
        return None
    files = sorted(Path(model_dir).glob("*.safetensors"))
    if not files:
        return None
    total = 0
    for file in files:
        with file.open("rb") as handle:
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size))
        total += sum(math.prod(entry["shape"]) for name, entry in header.items()
                     if name != "__metadata__")
    return total


_TOKENIZERS: dict[str, object] = {}


def length_check(curated: Path, tokenizer_dir: str, max_length: int, max_new_tokens: int
                 ) -> dict | None:
    """How many curated examples exceed ``max_length`` tokens (training truncates them) and how
    many targets exceed ``max_new_tokens`` (the student could not write them whole at test), with
    the student's tokenizer, as cotdistill.student.data.encode counts them."""
    try:
        from transformers import AutoTokenizer

        if tokenizer_dir not in _TOKENIZERS:
            _TOKENIZERS[tokenizer_dir] = AutoTokenizer.from_pretrained(tokenizer_dir)
        tokenizer = _TOKENIZERS[tokenizer_dir]
    except (OSError, ValueError) as exc:
        say(f"  (no length check: cannot load the tokenizer of {tokenizer_dir}: {exc})")
        return None
    longest, truncated, long_targets, count = 0, 0, 0, 0
    for line in curated.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        example = json.loads(line)
        prompt = len(tokenizer(example["input"])["input_ids"])
        target = len(tokenizer(example["target"], add_special_tokens=False)["input_ids"]) + 1
        count += 1
        longest = max(longest, prompt + target)
        truncated += prompt + target > max_length
        long_targets += target > max_new_tokens
    return {"examples": count, "longest_tokens": longest, "truncated_examples": truncated,
            "targets_over_max_new_tokens": long_targets}


def put(params: dict, dotted: str, value) -> None:
    *path, last = dotted.split(".")
    for part in path:
        params = params.setdefault(part, {})
    params[last] = value


def get(params: dict, dotted: str):
    for part in dotted.split("."):
        params = params[part]
    return params


def supported(dotted: str) -> bool:
    """Whether the installed cotdistill knows the params key ``dotted``."""
    from cotdistill.params import EvaluateParams, HParams

    section, _, name = dotted.rpartition(".")
    fields = {"train.hparams": HParams.model_fields, "evaluate": EvaluateParams.model_fields}
    return name in fields.get(section, {name: None})


# ---------------------------------------------------------------------------------------------
# the harness


class StageFailed(SystemExit):
    pass


class Harness:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.student = args.student
        self.seed = args.seed
        # --precision fp32 / bf16: rows of their own (the bf16 check), beside auto's
        self.variant = None if args.precision == "auto" else args.precision
        if args.mask_results:  # fine_tune_cot_calc with the results out of the loss
            self.variant = "masked" if self.variant is None else f"{self.variant}-masked"
        if args.few_shot:  # also evaluated with exemplars in context: the 2 x 2 of seed 002
            name = f"few-shot{args.few_shot}"
            self.variant = name if self.variant is None else f"{self.variant}-{name}"
        self.work_root = Path(args.work_root).resolve()
        self.results = Path(args.results).resolve()
        self.base = yaml.safe_load((REPO / "params.yaml").read_text(encoding="utf-8"))
        students = self.base.get("students") or {}
        if self.student not in students:
            raise SystemExit(f"--student {self.student}: not in params.yaml's students section "
                             f"(have: {', '.join(students)})")
        self.spec = students[self.student]["model"]
        self.settings = dict(TABLE_SETTINGS)
        self.settings.update({"train.hparams.precision": args.precision,
                              "evaluate.precision": args.precision})
        if args.mask_results:
            self.settings[MASK_RESULTS] = True
        if args.few_shot:
            self.settings["evaluate.few_shot"] = args.few_shot
            self.settings["train.method_params.fine_tune_cot_mixed.shots"] = args.few_shot
            # room for the shots in context: measured the same way as the 384 (see above)
            self.settings["train.hparams.max_length"] = args.few_shot_max_length
        if args.smoke:
            self.settings.update(SMOKE_SETTINGS)
        missing = [key for key in self.settings if not supported(key)]
        if missing and not args.smoke:
            raise SystemExit("the installed cotdistill lacks params the table is fixed to: "
                             f"{', '.join(missing)} (update the checkout / reinstall)")
        for key in missing:  # smoke only: prove the harness on older code
            say(f"smoke: cotdistill has no {key}; left out")
            del self.settings[key]
        self.dropped = missing
        self.device = hardware.describe()
        self.executable = shutil.which("cotdistill", path=str(Path(sys.executable).parent)) \
            or shutil.which("cotdistill")
        if self.executable is None:
            raise SystemExit("cotdistill: not found beside this Python nor on PATH")

    # --- settings and params -------------------------------------------------------------

    def row_settings(self, kind: str, two_stage_dataset: str | None = None) -> dict:
        """The settings that shape a row of ``kind`` (trained / baseline / teacher)."""
        if kind == TEACHER:
            chosen = {"evaluate.max_examples": self.settings["evaluate.max_examples"]}
        elif kind == "baseline":
            chosen = {k: v for k, v in self.settings.items() if k.startswith("evaluate.")}
        else:
            chosen = dict(self.settings)
            chosen.update({key: get(self.base, key) for key in FROM_PARAMS})
            if two_stage_dataset is not None:
                chosen["train.method_params.two_stage_cot.dataset"] = two_stage_dataset
                chosen["two_stage.first_stage"] = list(DATASETS)
        if self.args.smoke:
            chosen["smoke"] = True
        return chosen

    def params_for(self, datasets: list[str], two_stage_dataset: str | None = None) -> dict:
        params = copy.deepcopy(self.base)
        params["prepare"]["datasets"] = list(datasets)
        mirror = params["prepare"].get("mirror")
        if mirror and not Path(mirror).expanduser().is_absolute():
            params["prepare"]["mirror"] = str((REPO / mirror).resolve())  # work dir != root
        for spec in params.get("students", {}).values():
            model = spec.get("model", "")
            if model.startswith((".", "~")) or (REPO / model).exists() and "/" in model:
                spec["model"] = str((REPO / model).expanduser().resolve())
        params["teacher"].update(backend="replay", replay_source="kojima_logs", replay_path=None,
                                 samples=1, temperature=0.0, max_questions=None)
        params["train"]["methods"] = list(TRAINED)
        params["evaluate"]["baselines"] = list(BASELINES)
        put(params, MASK_RESULTS, bool(self.args.mask_results))  # the variant's, not the default
        for key, value in self.settings.items():
            put(params, key, value)
        if supported("train.hparams.transfer_probe"):
            # held-out tasks (what specialising cost): two published datasets none of the
            # seven trains on, SVAMP (arithmetic, near) and StrategyQA (yes / no, far). They
            # change no test figure of a row, so rows record them as their own figures, not as
            # settings. The probe (the held-out curve over training) never chooses a
            # checkpoint and only lengthens each scoring, so the table leaves it off.
            put(params, "evaluate.transfer_datasets", list(HELD_OUT))
            put(params, "evaluate.transfer_max_examples", HELD_OUT_EXAMPLES)
            put(params, "train.hparams.transfer_probe", None)
        put(params, "train.hparams.seed", self.seed)
        if two_stage_dataset is not None:
            put(params, "train.method_params.two_stage_cot.dataset", two_stage_dataset)
        return params

    def work_dir(self, name: str) -> Path:
        name = name if self.seed == 0 else f"{name}-seed{self.seed}"
        return self.work_root / (name if self.variant is None else f"{name}-{self.variant}")

    def write_params(self, work: Path, params: dict) -> None:
        work.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(params, sort_keys=False)
        path = work / "params.yaml"
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            write_atomic(path, text)

    # --- stamps: which stage outputs in a work directory are still good -----------------------

    @staticmethod
    def stamps(work: Path) -> dict:
        path = work / "harness-stamps.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def stamp(self, work: Path, name: str, value: dict) -> None:
        path = work / "harness-stamps.json"
        with locked(path):
            stamps = self.stamps(work)
            stamps[name] = value
            write_atomic(path, json.dumps(stamps, indent=2) + "\n")

    def data_params(self, work: Path) -> dict | None:
        """The prepare / teacher / curate params that made a work directory's data."""
        return (self.stamps(work).get("data") or {}).get("params")

    # --- running stages ---------------------------------------------------------------------

    def stage(self, work: Path, label: str, *arguments: str) -> float:
        say(f"[{label}] cotdistill {' '.join(arguments)}   (in {self.shown(work)})")
        started = time.perf_counter()
        result = subprocess.run([self.executable, *arguments], cwd=work, env=dict(os.environ))
        seconds = round(time.perf_counter() - started, 1)
        if result.returncode != 0:
            raise StageFailed(f"[{label}] cotdistill {' '.join(arguments)} failed (exit "
                              f"{result.returncode}) after {seconds} s; work directory {work}")
        say(f"[{label}] done in {seconds} s")
        return seconds

    def shown(self, path: Path) -> str:
        with contextlib.suppress(ValueError):
            return str(path.relative_to(REPO))
        return str(path)

    def ensure_data(self, work: Path, datasets: list[str], label: str) -> None:
        """prepare, teacher (the published log replayed), exemplars for --few-shot rows, curate:
        once per work directory, again only when their params changed."""
        params = self.params_for(datasets)
        self.write_params(work, params)
        wanted = {section: params[section] for section in ("prepare", "teacher", "curate")}
        done = self.stamps(work).get("data")
        if done and done.get("params") == wanted and (work / "reports/curate.json").is_file():
            if supported("evaluate.transfer_datasets") and held_out_of(work) != [
                    name for name in HELD_OUT if name not in datasets]:
                # data prepared by older code or for other held-out tasks: prepare again (the
                # same splits, deterministic) for their questions; rationales and models stand
                self.stage(work, label, "prepare")
            if self.exemplars_missing(work, params):  # data made before any --few-shot row
                self.stage(work, label, "exemplars")
                self.stage(work, label, "curate")
                self.stamp(work, "exemplars", params["exemplars"])
            return
        # --few-shot rows: the exemplars stage's shots, which the mixture trains on (curate
        # writes its examples) and the few-shot evaluation puts in context
        exemplars = ("exemplars",) if self.args.few_shot else ()
        seconds = sum(self.stage(work, label, name)
                      for name in ("prepare", "teacher", *exemplars, "curate"))
        self.stamp(work, "data", {"params": wanted, "wall_s": round(seconds, 1),
                                  "commit": commit()})
        if exemplars:
            self.stamp(work, "exemplars", params["exemplars"])

    def exemplars_missing(self, work: Path, params: dict) -> bool:
        """Whether a --few-shot row's work directory lacks the exemplars (or the mixture's
        examples) of these params. Stamped apart from the data: curate writes every other
        method's examples the same with or without exemplars, so models trained before
        stand."""
        return bool(self.args.few_shot) and not (
            self.stamps(work).get("exemplars") == params["exemplars"]
            and (work / "data" / "exemplars.jsonl").is_file()
            and (work / "data" / "curated" / f"{MIXED[0]}.jsonl").is_file())

    # --- rows ---------------------------------------------------------------------------------

    def base_row(self, dataset: str, method: str, seed: int | None, settings: dict,
                 work: Path) -> dict:
        return {"dataset": dataset, "student": self.student if method != TEACHER else TEACHER_NAME,
                "method": method, "seed": seed, "settings": settings,
                **({"variant": self.variant} if self.variant else {}),
                **({"settings_left_out": self.dropped} if self.dropped else {}),
                "commit": commit(), "device": self.device,
                "work_dir": self.shown(work),
                "finished": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat()}

    def figures(self, work: Path, dataset: str, method: str,
                name: str = "predictions.jsonl") -> dict:
        """n, correct, accuracy and its interval for ``dataset`` from a stage's predictions
        (``name``: predictions_few_shot.jsonl for the few-shot evaluation)."""
        folder = work / "reports" / "eval" / self.student / method
        flags = [record["correct"] for record in map(json.loads, (folder / name)
                 .read_text(encoding="utf-8").splitlines()) if record["dataset"] == dataset]
        metrics = json.loads((folder / "metrics.json").read_text(encoding="utf-8"))
        if name != "predictions.jsonl":
            metrics = metrics["few_shot"]
        reported = metrics["datasets"][dataset]
        n, correct = len(flags), sum(flags)
        if n != reported["n"] or abs(correct / n - reported["accuracy"]) > 1e-9:
            raise SystemExit(f"{folder}: predictions ({correct}/{n}) and metrics.json "
                             f"({reported}) disagree")
        return counts(correct, n)

    def transfer_figures(self, work: Path, method: str) -> dict:
        """Per held-out task (evaluate.transfer_datasets), n, correct, accuracy and interval
        from predictions_transfer.jsonl, checked against metrics.json's ``transfer``."""
        folder = work / "reports" / "eval" / self.student / method
        path = folder / "predictions_transfer.jsonl"
        if not path.is_file():
            return {}
        reported = json.loads((folder / "metrics.json").read_text(encoding="utf-8")) \
            .get("transfer", {})
        flags: dict[str, list[bool]] = {}
        for record in map(json.loads, path.read_text(encoding="utf-8").splitlines()):
            flags.setdefault(record["dataset"], []).append(record["correct"])
        figures = {}
        for dataset, marks in sorted(flags.items()):
            n, correct = len(marks), sum(marks)
            if dataset not in reported or reported[dataset]["n"] != n:
                raise SystemExit(f"{path}: {dataset} ({correct}/{n}) and metrics.json's "
                                 f"transfer ({reported.get(dataset)}) disagree")
            figures[dataset] = counts(correct, n)
        return figures

    def student_parameters(self, work: Path, method: str | None = None) -> int | None:
        if method is not None:
            count = parameter_count(work / "models" / self.student / method)
            if count is not None:
                return count
        try:
            from cotdistill.lm.store import resolve

            return parameter_count(resolve(self.spec, f"students.{self.student}.model"))
        except Exception:  # noqa: BLE001 - a count is a courtesy, never a reason to stop
            return None

    def eval_precision(self) -> str:
        configured = self.settings.get("evaluate.precision")
        if configured is None:
            return "fp32"  # cotdistill without a precision setting generates in fp32
        try:
            from cotdistill.lm.precision import resolve
        except ImportError:
            return hardware.auto_precision(self.device) if configured == "auto" else configured
        return resolve(configured)

    def trained_row(self, dataset: str, method: str) -> dict:
        """Fine-tune-CoT, answer-only, distilling step-by-step or two-stage CoT: train (or reuse
        the model this row's settings trained), evaluate on the dataset's test split."""
        two_stage = method == "two_stage_cot"
        settings = self.row_settings("trained", dataset if two_stage else None)
        work = self.work_dir(dataset)
        label = f"{dataset} {self.student}/{method} seed {self.seed}"
        self.ensure_data(work, [dataset], dataset)
        name = f"train/{self.student}/{method}"
        model = work / "models" / self.student / method
        done = self.stamps(work).get(name)
        data = self.data_params(self.work_dir("_pooled") if two_stage else work)
        extra: dict = {}
        if (done and done.get("settings") == settings and done.get("data") == data
                and (model / "train_info.json").is_file()):
            say(f"[{label}] trained before with these settings: model reused")
            train_s, train_commit = done["wall_s"], done["commit"]
            extra = done.get("extra", {})
        else:
            train_commit = commit()
            if two_stage:
                train_s, extra = self.train_two_stage(dataset, label)
            else:
                extra["lengths"] = self.lengths(work / "data" / "curated" / f"{method}.jsonl",
                                                label)
                train_s = self.stage(work, label, "train", "--student", self.student,
                                     "--method", method)
            data = self.data_params(self.work_dir("_pooled") if two_stage else work)
            self.stamp(work, name, {"settings": settings, "data": data, "wall_s": train_s,
                                    "commit": train_commit, "extra": extra})
        self.write_params(work, self.params_for([dataset]))
        eval_s = self.stage(work, label, "evaluate", "--student", self.student,
                            "--method", method)
        info = json.loads((model / "train_info.json").read_text(encoding="utf-8"))
        row = self.base_row(dataset, method, self.seed, settings, work)
        if train_commit != row["commit"]:
            row["train_commit"] = train_commit
        training = {key: info[key] for key in (
            "steps", "best_step", "best_val_accuracy", "val_examples", "train_examples",
            "epochs_trained", "stopped_early", "first_loss", "final_loss", "train_seconds")
            if key in info}
        if "epochs_trained" not in training and not two_stage and info.get("train_examples"):
            per_epoch = math.ceil(info["train_examples"] / (
                settings["train.hparams.batch_size"] * settings["train.hparams.grad_accum"]))
            training["epochs_trained"] = round(info["steps"] / per_epoch, 4)
        if two_stage:
            training["note"] = ("steps and train_examples count the pooled first stage too; "
                                "best_step, best_val_accuracy and epochs_trained are the "
                                "second stage's (validation: the pooled work directory's)")
        row.update(self.figures(work, dataset, method))
        if self.args.few_shot:
            row["few_shot"] = self.figures(work, dataset, method, "predictions_few_shot.jsonl")
        if transfer := self.transfer_figures(work, method):
            row["transfer"] = transfer  # held-out tasks: what specialising cost
        row["student_parameters"] = self.student_parameters(work, method)
        row["training"] = {**training, **extra}
        row["precision"] = {
            "train": info.get("precision", "fp32"), "evaluate": self.eval_precision(),
            "source": "train_info.json; evaluate: cotdistill.lm.precision on this machine"
            if "precision" in info else "fp32: cotdistill had no precision setting"}
        row["wall_s"] = {"train": train_s, "evaluate": eval_s, "total": round(train_s + eval_s, 1)}
        return row

    def lengths(self, curated: Path, label: str) -> dict | None:
        from cotdistill.lm.store import resolve

        check = length_check(curated, resolve(self.spec, f"students.{self.student}.model"),
                             self.settings["train.hparams.max_length"],
                             self.settings["evaluate.max_new_tokens"])
        if check:
            say(f"[{label}] {check['truncated_examples']} of {check['examples']} training "
                f"examples longer than max_length {self.settings['train.hparams.max_length']} "
                f"(truncated); {check['targets_over_max_new_tokens']} targets longer than "
                f"max_new_tokens {self.settings['evaluate.max_new_tokens']}; longest "
                f"{check['longest_tokens']} tokens")
        return check

    def train_two_stage(self, dataset: str, label: str) -> tuple[float, dict]:
        """Two-stage CoT for ``dataset``: ``cotdistill train --method two_stage_cot`` in the
        pooled work directory (its data: the seven datasets), second stage on ``dataset``; the
        model moves into the dataset's own work directory, to be evaluated on its test split
        there, like every other row. The pooled test split of ``dataset`` is checked to be the
        same questions, and pooled training questions that overlap them are counted."""
        pooled = self.work_dir("_pooled")
        self.ensure_data(pooled, list(DATASETS), "pooled")
        work = self.work_dir(dataset)
        overlap = self.check_pooled(pooled, work, dataset)
        lengths = self.lengths(pooled / "data" / "curated" / "two_stage_cot.jsonl", label)
        self.write_params(pooled, self.params_for(list(DATASETS), two_stage_dataset=dataset))
        seconds = self.stage(pooled, label, "train", "--student", self.student,
                             "--method", "two_stage_cot")
        for part in ("models", "reports/train"):
            source = pooled / part / self.student / "two_stage_cot"
            target = work / part / self.student / "two_stage_cot"
            if target.exists():
                shutil.rmtree(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(source, target)
        return seconds, {"lengths": lengths, "pooled_overlap": overlap,
                         "first_stage": f"{self.shown(pooled)} (prepare.datasets: all seven)"}

    def check_pooled(self, pooled: Path, work: Path, dataset: str) -> dict:
        from cotdistill.datasets.decontaminate import decontaminate

        def read(folder: Path, split: str) -> list[dict]:
            path = folder / "data" / "prepared" / f"{split}.jsonl"
            return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
                    if line.strip()]

        def test_of(folder: Path) -> list[tuple]:
            return [(r["id"], r["question"], r["answer"]) for r in read(folder, "test")
                    if r["dataset"] == dataset]

        if test_of(pooled) != test_of(work):
            raise SystemExit(f"{dataset}: the pooled work directory's test split differs from "
                             f"{work}'s; the two-stage row would be scored on other questions")
        others = [r["question"] for split in ("train", "val") for r in read(pooled, split)
                  if r["dataset"] != dataset]
        tests = [question for _, question, _ in test_of(work)]
        settings = self.base["prepare"].get("decontamination") or {}
        found = decontaminate(others, tests, n=settings.get("ngram", 8),
                              threshold=settings.get("threshold", 0.5)).counts()
        say(f"[{dataset} two_stage_cot] pooled training questions of the other datasets that "
            f"overlap {dataset}'s test questions: {found['exact']} exact, {found['ngram']} by "
            "n-grams")
        return found

    def baseline_row(self, dataset: str, method: str) -> dict:
        work = self.work_dir(dataset)
        label = f"{dataset} {self.student}/{method}"
        self.ensure_data(work, [dataset], dataset)
        seconds = self.stage(work, label, "baseline", "--student", self.student,
                             "--method", method)
        row = self.base_row(dataset, method, None, self.row_settings("baseline"), work)
        row.update(self.figures(work, dataset, method))
        if self.args.few_shot:
            row["few_shot"] = self.figures(work, dataset, method, "predictions_few_shot.jsonl")
        if transfer := self.transfer_figures(work, method):
            row["transfer"] = transfer  # the untrained student on the held-out tasks
        row["student_parameters"] = self.student_parameters(work)
        row["precision"] = {"evaluate": self.eval_precision(),
                            "source": "cotdistill.lm.precision on this machine"
                            if "evaluate.precision" in self.settings else
                            "fp32: cotdistill had no precision setting"}
        row["wall_s"] = {"evaluate": seconds, "total": seconds}
        return row

    def teacher_row(self, dataset: str) -> dict:
        """text-davinci-002 on the same test questions, from its published log: the project's
        log parser and answer library (cotdistill.teachers.kojima_logs.replay_logs matches the
        log's entries to the prepared test questions by text, as the teacher stage's replay
        does, and judges each answer with cotdistill.answers)."""
        from cotdistill.datasets.sources import FileSource
        from cotdistill.datasets.splits import first_per_dataset
        from cotdistill.jsonl import read_records
        from cotdistill.lm.store import cache_home
        from cotdistill.records import PreparedExample
        from cotdistill.teachers.kojima_logs import TEACHER as LOGGED, replay_logs

        work = self.work_dir(dataset)
        self.ensure_data(work, [dataset], dataset)
        started = time.perf_counter()
        test = [e for e in read_records(work / "data" / "prepared" / "test.jsonl",
                                        PreparedExample) if e.dataset == dataset]
        test = first_per_dataset(test, self.settings["evaluate.max_examples"])
        mirror = self.params_for([dataset])["prepare"].get("mirror")
        records, report = replay_logs(test, FileSource(mirror, cache_home() / "data"))
        seconds = round(time.perf_counter() - started, 1)
        matched = report.datasets[dataset]
        say(f"[{dataset} teacher] {LOGGED}'s log answers {len(records)} of {len(test)} test "
            f"questions, {sum(r.correct for r in records)} correctly")
        row = self.base_row(dataset, TEACHER, None, self.row_settings(TEACHER), work)
        row.update(counts(sum(r.correct for r in records), len(records)))
        row["teacher"] = {"model": LOGGED, "log": matched["log"],
                          "test_questions": len(test),
                          "questions_without_entry": matched["questions_without_entry"]}
        row["wall_s"] = {"total": seconds}
        return row

    # --- the plan -----------------------------------------------------------------------------

    def plan(self) -> list[tuple[str, str]]:
        chosen = self.args.methods
        order = [(d, m) for d in self.args.datasets for m in (*TRAINED, *BASELINES, TEACHER)
                 if m in chosen]
        order += [(d, m) for d in self.args.datasets if d in EXTRA_DATASETS for m in EXTRA
                  if m in chosen]
        order += [(d, m) for d in self.args.datasets if d in CALC_DATASETS for m in CALC
                  if m in chosen]
        order += [(d, m) for d in self.args.datasets if d in MIXED_DATASETS for m in MIXED
                  if m in chosen and self.args.few_shot]
        if self.args.mask_results:  # the masked variant is a fine_tune_cot_calc row only
            order = [(d, m) for d, m in order if m in CALC]
        if self.args.few_shot:  # the 2 x 2: Fine-tune-CoT against the mixture, both ways
            order = [(d, m) for d, m in order if m in ("fine_tune_cot", *MIXED)]
        return order

    def key(self, dataset: str, method: str) -> tuple:
        if method == TEACHER:
            return (dataset, TEACHER_NAME, TEACHER, None, False, None)
        return (dataset, self.student, method, None if method in BASELINES else self.seed, False,
                self.variant)

    def expected_settings(self, dataset: str, method: str) -> dict:
        if method == TEACHER:
            return self.row_settings(TEACHER)
        if method in BASELINES:
            return self.row_settings("baseline")
        return self.row_settings("trained", dataset if method == "two_stage_cot" else None)

    def run(self) -> None:
        plan = self.plan()
        rows = load_rows(self.results)
        say(f"{len(plan)} rows planned; results in {self.shown(self.results)}; work directories "
            f"under {self.shown(self.work_root)}; {hardware.label(self.device)}")
        for dataset, method in plan:
            key = self.key(dataset, method)
            existing = find(rows, key)
            wanted = self.expected_settings(dataset, method)
            if existing and existing.get("settings") == wanted and not self.args.rerun:
                say(f"[{dataset} {key[1]}/{method} seed {key[3]}] done before with these "
                    "settings: skipped (--rerun to run it again)")
                continue
            if existing:
                say(f"[{dataset} {key[1]}/{method}] "
                    + ("--rerun" if self.args.rerun else "settings changed") + ": run again")
            if self.args.dry_run:
                say(f"[{dataset} {key[1]}/{method} seed {key[3]}] would run")
                continue
            if method == TEACHER:
                row = self.teacher_row(dataset)
            elif method in BASELINES:
                row = self.baseline_row(dataset, method)
            else:
                row = self.trained_row(dataset, method)
            save_row(self.results, row)
            rows = load_rows(self.results)
            low, high = row["wilson95"]
            say(f"[{dataset} {row['student']}/{method}] {row['correct']}/{row['n']} = "
                f"{100 * row['accuracy']:.2f}% (95% CI {100 * low:.1f}-{100 * high:.1f}); "
                f"row written to {self.shown(self.results)}")


def held_out_of(work: Path) -> list[str] | None:
    """The held-out tasks in a work directory's data/prepared/transfer.jsonl (None: no file)."""
    path = work / "data" / "prepared" / "transfer.jsonl"
    if not path.is_file():
        return None
    names = [json.loads(line)["dataset"] for line in path.read_text(encoding="utf-8").splitlines()]
    return list(dict.fromkeys(names))


def counts(correct: int, n: int) -> dict:
    low, high = wilson_interval(correct, n)
    return {"n": n, "correct": correct, "accuracy": correct / n if n else 0.0,
            "wilson95": [round(low, 6), round(high, 6)]}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS,
                        metavar="DATASET", help=f"datasets (default: all: {', '.join(DATASETS)})")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                        metavar="METHOD",
                        help=f"rows to run (default: all: {', '.join(METHODS)}; "
                             f"{' and '.join(EXTRA)} on {' and '.join(EXTRA_DATASETS)} only, "
                             f"{' and '.join(CALC)} on {', '.join(CALC_DATASETS)} only, "
                             f"{' and '.join(MIXED)} on {', '.join(MIXED_DATASETS)} with "
                             "--few-shot only)")
    parser.add_argument("--student", default=STUDENT,
                        help="a student of params.yaml's students section (default %(default)s)")
    parser.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto",
                        help="train and evaluate in this precision; fp32 or bf16 rows are kept "
                             "beside auto's (the bf16 accuracy check)")
    parser.add_argument("--seed", type=int, default=0,
                        help="training seed (a second seed measures the noise between seeds; "
                             "untrained rows do not depend on it)")
    parser.add_argument("--work-root", default=None,
                        help="where the work directories go (default: reproduction/)")
    parser.add_argument("--results", default=None,
                        help="the results file (default: reproduction/results.json; with "
                             "--smoke: WORK_ROOT/results.json)")
    parser.add_argument("--smoke", action="store_true",
                        help="shrunk settings (" + ", ".join(f"{k.split('.')[-1]} {v}" for k, v in
                                                       SMOKE_SETTINGS.items())
                             + ") to prove the harness; never written to reproduction/")
    parser.add_argument("--mask-results", action="store_true",
                        help=f"fine_tune_cot_calc rows with {MASK_RESULTS} (the calculator's "
                             "results left out of the loss), kept beside the unmasked rows")
    parser.add_argument("--few-shot", type=int, default=None, metavar="N",
                        help="Fine-tune-CoT and fine_tune_cot_mixed rows (MultiArith, Date "
                             "Understanding) trained with N exemplars in the mixture's context "
                             "and evaluated both zero-shot and with N in context "
                             "(evaluate.few_shot), kept beside the other rows")
    parser.add_argument("--few-shot-max-length", type=int, default=768,
                        help="train.hparams.max_length of the --few-shot rows (default "
                             "%(default)s: N worked examples come before the question)")
    parser.add_argument("--rerun", action="store_true", help="run rows that exist too")
    parser.add_argument("--dry-run", action="store_true",
                        help="say which rows would run and which are done; run nothing")
    args = parser.parse_args(argv)
    if args.smoke:
        if args.work_root is None:
            args.work_root = tempfile.mkdtemp(prefix="cotdistill-table5-smoke-")
        if Path(args.work_root).resolve() == WORK_ROOT:
            parser.error("--smoke: give a throwaway --work-root, not reproduction/")
        args.results = args.results or str(Path(args.work_root) / "results.json")
        if Path(args.results).resolve() == RESULTS:
            parser.error(f"--smoke rows never go to {RESULTS.relative_to(REPO)}")
    args.work_root = args.work_root or str(WORK_ROOT)
    args.results = args.results or str(RESULTS)
    return args


def main(argv: list[str] | None = None) -> None:
    Harness(parse_args(argv)).run()


if __name__ == "__main__":
    main()
