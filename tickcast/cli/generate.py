"""``tickcast generate``: texts sampled from the text generator."""

from __future__ import annotations

import argparse
from typing import Any

from tickcast.cli.common import (
    EPILOG,
    Context,
    non_negative_int,
    positive_float,
    positive_int,
)
from tickcast.training.jobs import DEFAULT_NAMES

__all__ = ["load_generator", "register"]

HOW_TO_TRAIN = (": train one first with `tickcast train textgen --quick` (seconds, a pipeline "
                "check) or `tickcast train textgen` (minutes)")


def register(sub: Any) -> None:
    gen = sub.add_parser(
        "generate", help="print texts sampled from the text generator",
        description="Sample texts from the LATEST character LSTM of the model store (`tickcast "
        "train textgen`): each sample is the prompt followed by --length generated characters."
        " Generated texts are synthetic and unlabelled.", epilog=EPILOG)
    gen.add_argument("--prompt", default="", help="text every sample starts with [none]")
    gen.add_argument("--n", type=positive_int, default=5, help="number of samples [5]")
    gen.add_argument("--temperature", type=positive_float, default=0.8,
                     help="below 1 safer and more repetitive, above 1 more surprising [0.8]")
    gen.add_argument("--length", type=positive_int, default=200,
                     help="characters generated after the prompt [200]")
    gen.add_argument("--seed", type=non_negative_int,
                     help="same seed, model and arguments: same samples [random]")
    gen.add_argument("--stop-at-end", action="store_true",
                     help="end a sample where the model ends its text (--length is then a "
                     "maximum)")
    gen.add_argument("--name", default=DEFAULT_NAMES["textgen"],
                     help=f"model name in the store [{DEFAULT_NAMES['textgen']}]")
    gen.set_defaults(run=run)


def load_generator(context: Context, name: str | None) -> Any:
    """The ``LATEST`` text generator ``name`` (default ``textgen-lstm``) of the store."""
    from tickcast.models.predictors import load_latest
    from tickcast.models.registry import ModelStore

    return load_latest(ModelStore(context.settings.model_dir), name or DEFAULT_NAMES["textgen"],
                       kind="textgen", hint=HOW_TO_TRAIN)


def run(args: argparse.Namespace, context: Context) -> int:
    generator = load_generator(context, args.name)
    texts = generator.generate([args.prompt] * args.n, length=args.length,
                               temperature=args.temperature, seed=args.seed,
                               stop_at_end=args.stop_at_end)
    for text in texts:
        print(text)
    return 0
