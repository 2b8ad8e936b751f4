"""`check-data`: the data contract of model.yaml on data.path, before anything is trained.

Also the one place that reads the data file and splits it, so that train, evaluate and the gates see the same rows.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import Feature, ModelConfig

if TYPE_CHECKING:
    import pandas as pd

DATA_REPORT = Path("artifacts/data_report.json")
MIN_ROWS_PER_CLASS = 5
TRUE_WORDS = frozenset({"true", "1", "yes"})
FALSE_WORDS = frozenset({"false", "0", "no"})
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class Violation:
    column: str
    rule: str
    count: int
    examples: tuple[str, ...] = ()


class DataError(Exception):
    """The data file cannot be read at all (missing, not CSV)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--report", type=Path, default=DATA_REPORT, help="where to write the data report (JSON)")


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    try:
        frame = read_checked_frame(config)
    except DataError as err:
        print(f"check-data: {err}", file=sys.stderr)
        Path(config.path(args.report)).unlink(missing_ok=True)
        return 1
    report = profile(config, frame)
    write_json(config.path(args.report), report)
    print(f"check-data: {config.data.path}: {len(frame)} rows, {len(config.data.features)} features: contract holds")
    return 0


def read_checked_frame(config: ModelConfig) -> pd.DataFrame:
    """The data file, read and checked against the contract; DataError with the violations table otherwise."""
    frame = read_frame(config)
    violations = check(config, frame)
    if violations:
        table = format_table(violations)
        raise DataError(f"{config.data.path} breaks the data contract ({len(violations)} problems):\n{table}")
    return frame


def read_frame(config: ModelConfig) -> pd.DataFrame:
    """The data file with categorical columns (and a classification target) as text, so '1' stays '1'."""
    import pandas as pd

    path = config.path(config.data.path)
    text_columns = [f.name for f in config.data.features if f.is_categorical]
    if config.model.task == "classification":
        text_columns.append(config.data.target)
    try:
        frame = pd.read_csv(path, dtype=dict.fromkeys(text_columns, "object"), keep_default_na=True)
    except FileNotFoundError:
        raise DataError(f"{config.data.path} does not exist (run `dvc pull` if DVC tracks it)") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{config.data.path} is not a readable CSV file ({str(err).splitlines()[0]})") from None
    for feature in config.data.features:
        if feature.type == "boolean" and feature.name in frame:
            frame[feature.name] = frame[feature.name].map(_boolean_word, na_action="ignore")
    return frame


def _boolean_word(value: Any) -> Any:
    """true/false/1/0/yes/no in any case -> 'true'/'false'; anything else is left for the contract to reject."""
    word = str(value).strip().lower()
    return "true" if word in TRUE_WORDS else "false" if word in FALSE_WORDS else value


def allowed_values(feature: Feature) -> tuple[str, ...]:
    """The categories of a categorical feature, from the contract (never from the data)."""
    return ("false", "true") if feature.type == "boolean" else tuple(str(v) for v in feature.values)


def check(config: ModelConfig, frame: pd.DataFrame) -> list[Violation]:
    """Every way the frame breaks the contract; an empty list when it holds."""
    return [*_column_problems(config, frame), *_feature_problems(config, frame), *_target_problems(config, frame)]


def _column_problems(config: ModelConfig, frame: pd.DataFrame) -> Iterator[Violation]:
    expected = [*config.data.feature_names, config.data.target]
    missing = [c for c in expected if c not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in expected]
    for column in missing:
        yield Violation(column, "missing column", len(frame))
    if extra:
        yield Violation(", ".join(extra[:MAX_EXAMPLES]), "column not in the contract", len(extra), tuple(extra))
    if len(frame) < config.data.min_rows:
        yield Violation("(rows)", f"fewer than min_rows {config.data.min_rows}", len(frame))


def _examples(values: Iterable[Any]) -> tuple[str, ...]:
    out: list[str] = []
    for value in values:
        text = repr(value) if isinstance(value, str) else str(value)
        if text not in out:
            out.append(text)
        if len(out) == MAX_EXAMPLES:
            break
    return tuple(out)


def _feature_problems(config: ModelConfig, frame: pd.DataFrame) -> Iterator[Violation]:
    import pandas as pd

    for feature in config.data.features:
        if feature.name not in frame.columns:
            continue
        column = frame[feature.name]
        nulls = int(column.isna().sum())
        if nulls and not feature.nullable:
            yield Violation(feature.name, "null in a non-nullable column", nulls, ("<null>",))
        elif feature.max_null_rate is not None and len(column) and nulls / len(column) > feature.max_null_rate:
            rate = f"{nulls / len(column):.3f}"
            yield Violation(feature.name, f"null rate {rate} above max_null_rate {feature.max_null_rate}", nulls)
        present = column.dropna()
        if feature.is_categorical:
            allowed = set(allowed_values(feature))
            unknown = present[~present.astype(str).isin(allowed)]
            if len(unknown):
                rule = "not true/false" if feature.type == "boolean" else "unknown category"
                yield Violation(feature.name, rule, len(unknown), _examples(unknown))
            continue
        numbers = pd.to_numeric(present, errors="coerce")
        not_numbers = present[numbers.isna()]
        if len(not_numbers):
            yield Violation(
                feature.name,
                f"not {'an' if feature.type == 'integer' else 'a'} {feature.type}",
                len(not_numbers),
                _examples(not_numbers),
            )
        numbers = numbers.dropna()
        if feature.type == "integer":
            fractional = numbers[numbers != numbers.round()]
            if len(fractional):
                yield Violation(feature.name, "not an integer", len(fractional), _examples(fractional))
        if feature.min is not None and len(below := numbers[numbers < feature.min]):
            yield Violation(feature.name, f"below min {feature.min:g}", len(below), _examples(below))
        if feature.max is not None and len(above := numbers[numbers > feature.max]):
            yield Violation(feature.name, f"above max {feature.max:g}", len(above), _examples(above))


def label(value: Any) -> str:
    """A class label as text: booleans as true/false, so YAML `true` matches a CSV `True` or `true`."""
    return str(value).lower() if isinstance(value, bool) else str(value)


def _target_problems(config: ModelConfig, frame: pd.DataFrame) -> Iterator[Violation]:
    import pandas as pd

    target = config.data.target
    if target not in frame.columns:
        return
    column = frame[target]
    nulls = int(column.isna().sum())
    if nulls:
        yield Violation(target, "null target", nulls, ("<null>",))
    present = column.dropna()
    if config.model.task == "regression":
        numbers = pd.to_numeric(present, errors="coerce")
        if int(numbers.isna().sum()):
            yield Violation(
                target, "target not a number", int(numbers.isna().sum()), _examples(present[numbers.isna()])
            )
        return
    counts = present.astype(str).value_counts()
    if len(counts) < 2:
        yield Violation(target, "fewer than 2 classes", len(counts), _examples(counts.index))
    rare = counts[counts < MIN_ROWS_PER_CLASS]
    if len(rare):
        yield Violation(target, f"class with fewer than {MIN_ROWS_PER_CLASS} rows", len(rare), _examples(rare.index))
    positive = config.data.positive_class
    if positive is not None and label(positive) not in counts.index:
        yield Violation(target, f"positive_class {label(positive)!r} absent", 0, _examples(counts.index))


def format_table(violations: list[Violation]) -> str:
    """A short fixed-width table: column, rule, count, examples."""
    rows = [("column", "rule", "count", "examples")]
    rows += [(v.column, v.rule, str(v.count), ", ".join(v.examples)) for v in violations]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines = [f"  {r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}".rstrip() for r in rows]
    return "\n".join(lines)


def split(config: ModelConfig, frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The train/test split every stage shares: same seed, same rows, stratified for classification by default."""
    from sklearn.model_selection import train_test_split

    spec = config.data.split
    labels = frame[config.data.target] if config.stratify else None
    train, test = train_test_split(frame, test_size=spec.test_size, random_state=spec.seed, stratify=labels)
    return train, test


def file_md5(path: Path) -> str:
    """The md5 DVC records for a file (DVC 3 hashes the raw bytes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def profile(config: ModelConfig, frame: pd.DataFrame) -> dict[str, Any]:
    """What check-data saw: rows, null rates, ranges and category counts per feature (also a drift reference)."""
    import pandas as pd

    features: dict[str, Any] = {}
    for feature in config.data.features:
        column = frame[feature.name]
        entry: dict[str, Any] = {"type": feature.type, "null_rate": round(float(column.isna().mean()), 6)}
        if feature.is_categorical:
            counts = column.dropna().astype(str).value_counts()
            entry["counts"] = {value: int(counts.get(value, 0)) for value in allowed_values(feature)}
        else:
            numbers = pd.to_numeric(column, errors="coerce").dropna()
            entry |= {"min": float(numbers.min()), "max": float(numbers.max()), "mean": round(float(numbers.mean()), 6)}
        features[feature.name] = entry
    target = frame[config.data.target]
    summary: dict[str, Any] = {"rows": len(frame), "data_md5": file_md5(config.path(config.data.path))}
    if config.model.task == "classification":
        summary["target"] = {str(k): int(v) for k, v in target.astype(str).value_counts().sort_index().items()}
    else:
        summary["target"] = {"min": float(target.min()), "max": float(target.max()), "mean": float(target.mean())}
    return {**summary, "features": features}


def write_json(path: Path, document: Any) -> None:
    """Write atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(document, indent=2, default=_jsonable) + "\n")
    partial.replace(path)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Violation):
        return asdict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
