"""One verb per stage. dvc.yaml, the Makefile and the workflows call only these.

Exit codes: 0 success, 1 the stage found a problem (failed gate, data contract violation), 2 your input is
wrong (usage, model.yaml).
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from collections.abc import Callable
from pathlib import Path

from .config import ConfigError, ModelConfig, load_config

# verb -> (help, module). Each module has add_arguments(parser) and run(config, args) -> int.
# The table is literal: nothing from model.yaml or the command line picks a module.
VERBS: dict[str, tuple[str, str]] = {
    "validate": ("check model.yaml against the schema and its cross-field rules", "validate"),
    "release-check": ("tag equals v + metadata.version and this commit's gates passed", "release_check"),
    "promote": ("pin an image digest in a deploy overlay, synced with model.yaml", "promote"),
    "provenance": ("what the image is built from: git sha, data and model.yaml hashes, gate report", "provenance"),
    "check-data": ("check the data file against the data contract in model.yaml", "data"),
    "train": ("check the data, fit the model, save the artifact to artifacts/model", "train"),
    "evaluate": ("score the artifact on the test split: metrics.json, slice metrics, plots", "evaluate"),
    "gate": ("decide the gates (absolute, against the champion, per slice): gate_report.json", "gates"),
    "report": ("write report.md (PR comment, job summary) and model_card.md", "report"),
    "export": ("write the fast serving runtime from the trained model, with a parity check", "export"),
    "serve": ("serve the model over HTTP (/predict, Open Inference Protocol v2, /metrics)", "serve"),
    "container": ("build the serving image, or run it and call it (build | smoke)", "container"),
    "monitor": ("drift and live-quality report from prediction logs", "monitor"),
}


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the verb named in ``argv`` imports its module (every stage is its own process under DVC,
    and importing all of them would cost each one the imports of the others). ``None``: every verb, in full."""
    named = [a for a in argv if a in VERBS] if argv is not None else list(VERBS)
    parser = argparse.ArgumentParser(prog=__package__, description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("model.yaml"), help="path to model.yaml")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for verb, (help_text, module_name) in VERBS.items():
        sub = verbs.add_parser(verb, help=help_text, description=help_text)
        sub.set_defaults(module=module_name)
        if verb in named:
            _module(module_name).add_arguments(sub)
    return parser


def _module(name: str) -> types.ModuleType:
    return importlib.import_module(f".{name}", __package__)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    module = _module(args.module)
    run: Callable[[ModelConfig, argparse.Namespace], int] = module.run
    try:
        # A stage that never reads the data file (serve: the image has none) sets NEEDS_DATA = False.
        config = load_config(args.config, require_data=getattr(module, "NEEDS_DATA", True))
        return run(config, args)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
