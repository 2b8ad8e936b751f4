"""`validate`: model.yaml against the schema, then its meaning. Loading the config already did both."""

from __future__ import annotations

import argparse

from .config import ModelConfig


def add_arguments(parser: argparse.ArgumentParser) -> None:
    del parser  # no options: the global --config names the file


def run(config: ModelConfig, args: argparse.Namespace) -> int:
    m, gates = config.model, config.evaluation.gates
    print(
        f"{args.config}: valid: {config.metadata.name} {config.metadata.version}, {m.framework} {m.estimator} "
        f"({m.task}), {len(config.data.features)} features, {len(gates)} gate{'s' * (len(gates) != 1)}"
    )
    return 0
