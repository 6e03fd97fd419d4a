"""A team's own dataset, declared in ``prepare.datasets`` and loaded with Hugging Face
``datasets``: a local JSON Lines, JSON, CSV or Parquet file (a DVC-tracked input), or a hub
dataset at a pinned revision.

Every row is checked at the door, and the first bad one stops ``prepare`` with one line that
names the file, the row and the field: a missing field, an empty question, an answer that does
not read as the declared answer type, options that do not contain the answer, a duplicate id.
Answers are put in the canonical form of their type (:func:`cotdistill.answers.normalize_gold`);
what that changed is counted (thousands separators, currency signs, whitespace, case, an option
given by its text), and ``reports/prepare.json`` shows the counts.

Choice questions get their options appended the way Kojima et al. word them (``" Answer
Choices: (A) ... (B) ..."``), so teacher and student see the options, and the answer is a letter.
"""

from __future__ import annotations

import csv
import json
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cotdistill.answers import choice_letters, normalize_gold, parse_number, text_words
from cotdistill.datasets.synthetic import RawExample
from cotdistill.errors import CotdistillError
from cotdistill.jsonl import numbered_lines
from cotdistill.params.prepare import DatasetEntry

MAX_CHOICES = 26
# A question longer than this is refused: no benchmark question comes near it (GSM8K's longest
# is under 1,000 characters), no student's context holds it, and a file holding one (a pasted
# document, a binary field) is a mistake that would otherwise reach every stage and every
# teacher call.
MAX_QUESTION_CHARS = 20_000
_ALLOWED_CONTROLS = "\t\n\r"


@dataclass
class UserDataset:
    """The rows of a user dataset: ``examples[i]`` is row ``i`` (train rows, then test rows)."""

    examples: list[RawExample]
    ids: list[str]
    train: list[int]
    test: list[int] | None  # None: no own test split (a seeded fraction is drawn)
    normalised: Counter = field(default_factory=Counter)


@dataclass(frozen=True)
class _Part:
    """One file or hub split, as the errors name it."""

    label: str
    rows: list[dict[str, Any]]


def load(entry: DatasetEntry, root: Path) -> UserDataset:
    """Read and check ``entry``'s rows; ``root`` is where relative paths start."""
    parts = _read_hub(entry) if entry.hub is not None else _read_files(entry, root)
    dataset = UserDataset([], [], [], [] if len(parts) == 2 else None)
    seen: dict[str, str] = {}
    for number, part in enumerate(parts):
        for row_number, row in enumerate(part.rows, start=1):
            where = f"{part.label}: row {row_number}"
            example, notes = _example(entry, row, where)
            identity = _id(entry, row, where, len(dataset.examples))
            if identity in seen:
                raise CotdistillError(f"{where}: field {entry.id!r}: duplicate id {identity!r} "
                                      f"(first at {seen[identity]})")
            seen[identity] = where
            (dataset.test if number == 1 else dataset.train).append(len(dataset.examples))
            dataset.examples.append(example)
            dataset.ids.append(identity)
            dataset.normalised.update(notes)
    return dataset


# --- reading -------------------------------------------------------------------------------


def _read_files(entry: DatasetEntry, root: Path) -> list[_Part]:
    paths = [entry.path] + ([entry.test_path] if entry.test_path else [])
    for path in paths:  # a symlink may lead out of the repository, where DVC does not look
        if not (root / path).resolve().is_relative_to(root.resolve()):
            raise CotdistillError(f"{path}: leads outside the repository (to "
                                  f"{(root / path).resolve()}); put the file itself inside it, "
                                  "so that DVC versions it")
    return [_Part(path, _read_file(root / path, path, entry.file_format)) for path in paths]


def _read_file(path: Path, label: str, kind: str) -> list[dict[str, Any]]:
    """The file's rows as dicts, read with ``datasets`` into a throw-away cache (a file edited
    in place is read again, never served from a stale cache)."""
    import datasets

    if not path.is_file():
        raise CotdistillError(f"{label}: not found (a user dataset's file; `dvc pull` it, or "
                              f"fix prepare.datasets' path)")
    options: dict[str, Any] = {}
    if kind == "jsonl":
        _check_lines(path, label)
    if kind == "csv":
        header = _csv_header(path, label)
        # every column as text: "007" stays "007", "1,234" stays "1,234" (we normalise answers)
        options = {"features": datasets.Features({name: datasets.Value("string") for name in header}),
                   "keep_default_na": False, "encoding": "utf-8-sig"}  # a BOM (Excel) is no field
    builder = {"jsonl": "json"}.get(kind, kind)
    with tempfile.TemporaryDirectory(prefix="cotdistill-datasets-") as cache:
        try:
            loaded = datasets.load_dataset(builder, data_files=str(path), split="train",
                                           cache_dir=cache, keep_in_memory=True, **options)
        except Exception as exc:  # datasets wraps the parser's error in its own types
            raise CotdistillError(f"{label}: cannot be read as {kind} ({_cause(exc)})") from None
        rows = loaded.to_list()
    if not rows:
        raise CotdistillError(f"{label}: no rows")
    return rows


def _check_lines(path: Path, label: str) -> None:
    """Every line of a JSON Lines file is UTF-8 and one JSON object, or an error naming the
    line (the Arrow reader's own errors name neither the line nor the cause plainly)."""
    for number, line in numbered_lines(path, label):
        try:
            value = json.loads(line.rstrip("\r\n"))
        except json.JSONDecodeError as exc:
            raise CotdistillError(f"{label}:{number}: not valid JSON (column {exc.colno}: "
                                  f"{exc.msg.removesuffix(' at')})") from None
        if not isinstance(value, dict):
            raise CotdistillError(f"{label}:{number}: a {type(value).__name__}, not a JSON "
                                  f"object")


def _csv_header(path: Path, label: str) -> list[str]:
    try:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), None)
    except UnicodeDecodeError as exc:
        raise CotdistillError(f"{label}: not valid UTF-8 (byte 0x{exc.object[exc.start]:02x} "
                              f"at offset {exc.start})") from None
    if not header:
        raise CotdistillError(f"{label}: no header row")
    twice = sorted({name for name in header if header.count(name) > 1})
    if twice:
        raise CotdistillError(f"{label}: column {twice[0]!r} appears twice in the header")
    return header


def _read_hub(entry: DatasetEntry) -> list[_Part]:
    import datasets

    splits = [entry.train_split] + ([entry.test_split] if entry.test_split else [])
    parts = []
    for split in splits:
        label = f"{entry.hub}@{entry.revision} [{split}]"
        try:
            loaded = datasets.load_dataset(entry.hub, entry.config, split=split,
                                           revision=entry.revision)
        except Exception as exc:
            raise CotdistillError(f"{label}: cannot be loaded ({_cause(exc)}); offline, "
                                  f"export it to a file and give path instead") from None
        parts.append(_Part(label, loaded.to_list()))
    return parts


def _cause(exc: BaseException) -> str:
    """The innermost error's message, on one line (datasets chains the parser's error)."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --- checking one row ------------------------------------------------------------------------


def _value(row: dict[str, Any], name: str, where: str) -> Any:
    if name not in row:
        raise CotdistillError(f"{where}: no field {name!r} (fields: {', '.join(sorted(row))})")
    value = row[name]
    if value is None:  # a row without the field, or null (datasets fills what a row lacks)
        raise CotdistillError(f"{where}: field {name!r} is missing (or null)")
    if isinstance(value, str) and not value.strip():
        raise CotdistillError(f"{where}: field {name!r} is empty")
    return value


def _text(row: dict[str, Any], name: str, where: str, notes: Counter) -> str:
    value = _value(row, name, where)
    if isinstance(value, (dict, list)):
        raise CotdistillError(f"{where}: field {name!r} is a {type(value).__name__}, not text")
    text = str(value)
    if text != text.strip():
        notes[f"{name}: whitespace trimmed"] += 1
    return text.strip()


def _checked(text: str, name: str, where: str, limit: int | None = None) -> str:
    """``text`` unless it is over ``limit`` characters or holds a control character (a NUL, an
    escape sequence: what a binary or mis-encoded field leaves), which prompts, tokenizers and
    JSON Lines readers downstream treat each in their own way."""
    if limit is not None and len(text) > limit:
        raise CotdistillError(f"{where}: field {name!r} is {len(text):,} characters long; the "
                              f"limit is {limit:,} (cotdistill.datasets.user.MAX_QUESTION_CHARS)")
    for position, char in enumerate(text):
        if unicodedata.category(char) == "Cc" and char not in _ALLOWED_CONTROLS:
            raise CotdistillError(f"{where}: field {name!r} holds the control character "
                                  f"U+{ord(char):04X} at character {position + 1}")
    return text


def _id(entry: DatasetEntry, row: dict[str, Any], where: str, index: int) -> str:
    if entry.id is None:
        return f"{index:05d}"
    return _text(row, entry.id, where, Counter())


def _choices(entry: DatasetEntry, row: dict[str, Any], where: str) -> list[str]:
    names = [entry.choices] if isinstance(entry.choices, str) else list(entry.choices or [])
    if isinstance(entry.choices, str):
        options = _value(row, entry.choices, where)
        if not isinstance(options, list):
            raise CotdistillError(f"{where}: field {entry.choices!r} is not a list of options "
                                  f"(give a list, or choices: [column, column, ...])")
    else:
        options = [_value(row, name, where) for name in names]
    label = f"field {names[0]!r}" if len(names) == 1 else f"fields {', '.join(names)}"
    texts = [_checked(" ".join(str(option).split()),
                      names[i] if len(names) == len(options) else f"{names[0]}[{i}]", where,
                      MAX_QUESTION_CHARS) for i, option in enumerate(options)]
    if not 2 <= len(texts) <= MAX_CHOICES:
        raise CotdistillError(f"{where}: {label}: {len(texts)} options (a choice question "
                              f"needs 2 to {MAX_CHOICES})")
    if any(not text for text in texts):
        raise CotdistillError(f"{where}: {label}: an option is empty")
    folded = [text.casefold() for text in texts]
    if len(set(folded)) != len(folded):
        raise CotdistillError(f"{where}: {label}: two options are the same")
    return texts


def _answer(entry: DatasetEntry, raw: Any, choices: list[str] | None, where: str,
            notes: Counter) -> str:
    """The gold answer in canonical form, or an error saying why it is not of its type."""
    field = f"field {entry.answer!r}"
    kind = entry.answer_type
    if isinstance(raw, bool) and kind == "yes_no":
        notes["answer: true/false read as yes/no"] += 1
        return "yes" if raw else "no"
    if isinstance(raw, (dict, list, bool)):
        raise CotdistillError(f"{where}: {field}: {raw!r} is not a {kind} answer")
    text = str(raw)
    stripped = " ".join(text.split())
    if stripped != text:
        notes["answer: whitespace trimmed"] += 1
    if kind == "number":
        if parse_number(stripped) is None:
            raise CotdistillError(f"{where}: {field}: {stripped!r} is not a number")
        if "," in stripped:
            notes["answer: thousands separators removed"] += 1
        if any(sign in stripped for sign in "$€£"):
            notes["answer: currency sign removed"] += 1
        return normalize_gold(stripped, kind)
    if kind == "yes_no":
        lowered = stripped.lower()
        if lowered in ("true", "false"):
            notes["answer: true/false read as yes/no"] += 1
            return "yes" if lowered == "true" else "no"
        if lowered not in ("yes", "no"):
            raise CotdistillError(f"{where}: {field}: {stripped!r} is not yes or no")
        if lowered != stripped:
            notes["answer: case"] += 1
        return lowered
    if kind == "choice":
        letters = choice_letters(len(choices or []))
        letter = stripped.strip("()").upper()
        if len(letter) == 1 and letter in letters:
            return letter
        for position, option in enumerate(choices or []):
            if option.casefold() == stripped.casefold():
                notes["answer: option text read as its letter"] += 1
                return letters[position]
        raise CotdistillError(f"{where}: {field}: {stripped!r} is neither a letter "
                              f"{letters[0]}-{letters[-1]} nor one of the options "
                              f"({'; '.join(choices or [])})")
    canonical = normalize_gold(stripped, kind)
    if not text_words(stripped):
        raise CotdistillError(f"{where}: {field}: {stripped!r} has no word to compare")
    if canonical != stripped:
        notes["answer: case and punctuation"] += 1
    return canonical


def _example(entry: DatasetEntry, row: dict[str, Any], where: str) -> tuple[RawExample, Counter]:
    from cotdistill.datasets.published import with_choices

    notes: Counter = Counter()
    question = _checked(_text(row, entry.question, where, notes), entry.question, where,
                        MAX_QUESTION_CHARS)
    choices = _choices(entry, row, where) if entry.answer_type == "choice" else None
    answer = _answer(entry, _value(row, entry.answer, where), choices, where, notes)
    shown = with_choices(question, choices) if choices else question
    return RawExample(shown, answer, tuple(choices) if choices else None), notes
