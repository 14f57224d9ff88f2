"""``train_ppo_agent.py``'s command line: flags, ``--config`` TOML, logging set-up and exit codes.

Precedence: :class:`~advanced_risk.training.settings.TrainingSettings` defaults < ``--quick`` sizes <
``--config`` TOML < flags given on the command line. ``--resume`` reads ``<out>/config.toml``
(the resolved settings of the run being resumed) and ignores other training settings, except
``out`` itself: the run continues in the ``--out`` given (relative to the current directory), not
in the directory stored in the file, so a moved or copied run directory resumes where it lies.

Exit codes: 0 success; 2 bad input (missing, corrupt or invalid data, an OHLCV file missing a
column; corrupt or mismatched model; unwritable ``--out``; bad flags or config: a value of the
wrong type, a seed outside [0, 2**32 - 1], a split date that is not a date or out of order),
reported as ONE line on stderr (``error: ...``; argparse's own usage errors read
``train_ppo_agent.py: error: ...``) without a traceback; 130 interrupted. Anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import logging
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from advanced_risk.errors import AdvancedRiskError
from advanced_risk.training.data import split_overrides
from advanced_risk.training.settings import TrainingSettings, apply_quick

__all__ = ["MAX_SEED", "build_parser", "check_values", "main", "resolve_settings"]

_FIELDS = {f.name: f for f in dataclasses.fields(TrainingSettings)}
_CHOICES = {
    "data": ("synthetic", "regime", "sp500"),
    "device": ("auto", "cpu", "cuda"),
    "backend": ("local", "ray"),
    "agents": ("allocator", "risk"),
}


class _OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _help(name: str) -> str:
    f = _FIELDS[name]
    doc = _DOCS.get(name, "")
    default = f.default if f.default is not dataclasses.MISSING else None
    return f"{doc} (default: {default})".replace("%", "%%")


def _field_docs() -> dict[str, str]:
    """Each field's one-line docstring, read from the source (the text under the field)."""
    import inspect

    lines = inspect.getsource(TrainingSettings).splitlines()
    docs: dict[str, str] = {}
    for i, line in enumerate(lines[:-1]):
        name = line.strip().split(":")[0]
        if name in _FIELDS and lines[i + 1].strip().startswith('"""'):
            docs[name] = lines[i + 1].strip().strip('"')
    return docs


_DOCS = _field_docs()


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser; every option defaults to SUPPRESS so explicit flags can be told apart."""
    parser = _OneLineParser(
        prog="train_ppo_agent.py",
        description="Train the PPO portfolio allocator and report on out-of-sample data. "
        "See docs/training.md.",
        argument_default=argparse.SUPPRESS,
    )
    parser.add_argument("--config", metavar="TOML", help="settings file; flags override it (default: none)")
    for name, f in _FIELDS.items():
        if name in ("env", "ppo"):
            continue
        flag = "--" + name.replace("_", "-")
        if f.type in ("bool", bool):
            parser.add_argument(flag, action="store_true", help=_help(name))
            continue
        kind = int if "int" in str(f.type) else str
        meta = "PATH" if name in ("data_csv", "out", "model_path") else ("N" if kind is int else None)
        parser.add_argument(flag, type=kind, choices=_CHOICES.get(name), metavar=meta, help=_help(name))
    return parser


def _read_toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            values = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise AdvancedRiskError(f"--config: file not found: {path}") from exc
    except (tomllib.TOMLDecodeError, OSError, UnicodeDecodeError) as exc:
        raise AdvancedRiskError(f"--config {path}: not valid TOML: {exc}") from exc
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise AdvancedRiskError(f"--config {path}: unknown key(s) {unknown}")
    return values


def resolve_settings(argv: Sequence[str] | None = None) -> TrainingSettings:
    """Parse ``argv`` and merge defaults, ``--quick``, ``--config`` and flags into settings."""
    args = vars(build_parser().parse_args(argv))
    config = args.pop("config", None)
    if args.get("resume"):
        out = Path(args.get("out", _FIELDS["out"].default))
        stored = out / "config.toml"
        if not stored.is_file():
            raise AdvancedRiskError(f"--resume: {stored} not found (is --out the run to resume?)")
        values = _relocated(_read_toml(str(stored)), out) | {"resume": True}
        kept = ("log_json", "tensorboard", "plot", "torch_threads", "evaluate")
        for key in kept:
            if key in args:
                values[key] = args[key]
        _warn_ignored_on_resume(args, values, config, stored, kept)
        return _make(values)
    values = _read_toml(config) if config else {}
    explicit = set(args) | set(values)
    if args.get("quick") or values.get("quick"):
        values = apply_quick(values, explicit)
    values |= args
    evaluate_only = values.get("evaluate") and values.get("model_path") and not values.get("episodes")
    if evaluate_only and not values.get("total_steps") and "asset_count" not in explicit:
        from advanced_risk.training.agents import agents_model_asset_count
        from advanced_risk.training.report import model_asset_count

        path = Path(values["model_path"])
        count = agents_model_asset_count(path) if values.get("agents") == "risk" else model_asset_count(path)
        if count is not None:
            values["asset_count"] = count
    return _make(values)


def _warn_ignored_on_resume(
    args: dict[str, Any], stored: dict[str, Any], config: str | None, path: Path, kept: Sequence[str]
) -> None:
    """One stderr line naming the flags ``--resume`` ignores (the stored settings win), if any.

    ``--resume --total-steps N`` used to continue the stored run to its stored length without a word.
    A flag equal to its stored value is not named.
    """
    _same = object()
    ignored = [
        f"--{k.replace('_', '-')} {args[k]}"
        for k in sorted(args)
        if k not in (*kept, "out", "resume") and stored.get(k, _same) != args[k]
    ]
    if config is not None:
        ignored.insert(0, f"--config {config}")
    if ignored:
        print(
            f"warning: --resume continues the run as stored in {path}; ignored: {', '.join(ignored)}",
            file=sys.stderr,
        )


def _relocated(stored: dict[str, Any], out: Path) -> dict[str, Any]:
    """The stored settings of a run being resumed, moved to the run directory ``out``.

    ``out`` is the ``--out`` given with ``--resume`` (relative to the current directory now), and
    it replaces the stored ``out``: a run directory that was moved or copied since it was written
    continues where it lies now, never in (and never over) the directory it was trained in. A
    stored ``model_path`` inside the stored run directory moves with it; one elsewhere is kept.

    Parameters
    ----------
    stored : dict
        The values read from ``<out>/config.toml``.
    out : Path
        The run directory named on the command line.

    Returns
    -------
    dict
        A copy of ``stored`` with ``out`` (and a ``model_path`` under the old ``out``) replaced.
    """
    values = dict(stored)
    old_out = values.get("out")
    values["out"] = str(out)
    model_path = values.get("model_path")
    if isinstance(old_out, str) and isinstance(model_path, str):
        try:  # lexical: the stored paths were written together, in the same form
            inside = Path(model_path).relative_to(old_out)
        except ValueError:
            inside = None
        if inside is not None:
            values["model_path"] = str(out / inside)
    return values


MAX_SEED = 2**32 - 1
"""Largest ``--seed``: seeds are in [0, 2**32 - 1], the range numpy, torch and gymnasium all take."""

_KINDS: dict[str, tuple[type, str]] = {
    "int": (int, "an integer"),
    "str": (str, "a string"),
    "bool": (bool, "true or false"),
    "dict": (dict, "a table"),
}


def _type_problem(name: str, value: Any) -> str | None:
    """Why ``value`` (from the command line or a TOML file) cannot be setting ``name``, or None.

    The settings' annotations are the contract: an ``int`` field takes an integer (not a bool, not
    2.5), a ``str`` field a string, a ``bool`` field true/false, ``... | None`` also None.
    """
    annotation = str(_FIELDS[name].type)
    if value is None:
        return None if "None" in annotation else f"{name} must not be empty"
    kind, wanted = _KINDS[annotation.split("[")[0].split("|")[0].strip()]
    if isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return None
    return f"{name} must be {wanted}, got {value!r:.60}"


def check_values(values: dict[str, Any]) -> None:
    """Refuse settings the training code would only trip over later, with a traceback.

    Checks each value's type against :class:`~advanced_risk.training.settings.TrainingSettings` (TOML files
    can hold anything), that ``seed`` is in [0, ``MAX_SEED``], and that ``train_end`` and
    ``test_start`` are dates (each named by its flag) in order. TOML dates (``2012-12-31``
    unquoted) are accepted for the two split dates and turned into ISO strings in ``values``.

    Raises
    ------
    AdvancedRiskError
        Naming the setting and the bad value (the CLI prints it as one line and exits 2).
    """
    for name in ("train_end", "test_start"):
        if isinstance(values.get(name), datetime.date):
            values[name] = values[name].isoformat()
    problems = [p for name, value in values.items() if (p := _type_problem(name, value)) is not None]
    if problems:
        raise AdvancedRiskError("bad settings: " + "; ".join(problems))
    seed = values.get("seed", 0)
    if not 0 <= seed <= MAX_SEED:
        raise AdvancedRiskError(f"--seed must be in [0, {MAX_SEED}], got {seed}")
    split_overrides(values.get("train_end"), values.get("test_start"))


def _make(values: dict[str, Any]) -> TrainingSettings:
    unknown = sorted(set(values) - set(_FIELDS))
    if unknown:
        raise AdvancedRiskError(f"bad settings: unknown key(s) {unknown}")
    check_values(values)
    try:
        return TrainingSettings(**values)
    except TypeError as exc:
        raise AdvancedRiskError(f"bad settings: {exc}") from exc


def configure_logging(json_lines: bool) -> None:
    """structlog through the stdlib: console lines (training events) or JSON lines (everything)."""
    import structlog

    shared: list[Any] = [
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso"),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # not cached: a module's logger that cached this set-up would keep it after a caller (a
        # test, a notebook running main() in-process) configures structlog again; training logs
        # once per update, so the per-call lookup costs nothing measurable
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(structlog.stdlib.ProcessorFormatter(processor=renderer, foreign_pre_chain=shared))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logging.getLogger("advanced_risk").setLevel(logging.INFO if json_lines else logging.WARNING)
    for name in (
        "advanced_risk.training.pipeline",
        "advanced_risk.training.ppo",
        "advanced_risk.training.report",
        "advanced_risk.training.distributed",
    ):
        logging.getLogger(name).setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (see the module docstring)."""
    try:
        settings = resolve_settings(argv)
        configure_logging(settings.log_json)
        from advanced_risk.training.pipeline import run  # torch loads only once the flags are valid

        summary = run(settings)
    except AdvancedRiskError as exc:
        print(f"error: {exc}".replace("\n", " "), file=sys.stderr)
        return 2
    except OSError as exc:  # e.g. --model-path in a directory that cannot be written
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; continue with --resume --out <run dir>", file=sys.stderr)
        return 130
    print(f"report: {Path(summary['out']) / 'report.md'}  model: {summary['model']}")
    return 0
