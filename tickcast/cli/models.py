"""``tickcast models``: list, show, promote and roll back versions in the model store."""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from tickcast.cli.common import EPILOG, Context
from tickcast.errors import UsageError

__all__ = ["register"]


def register(sub: Any) -> None:
    models = sub.add_parser("models", help="list, show, promote or roll back model versions",
                            epilog=EPILOG)
    actions = models.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="every model and version; * marks LATEST, "
                                 "~ the challenger in shadow")
    listing.add_argument("name", nargs="?")
    show = actions.add_parser("show", help="a version's manifest (default LATEST) and report")
    show.add_argument("name")
    show.add_argument("version", nargs="?")
    promote = actions.add_parser("promote", help="verify a version and make it LATEST")
    promote.add_argument("name")
    promote.add_argument("version")
    rollback = actions.add_parser("rollback", help="make the previous LATEST version LATEST")
    rollback.add_argument("name")
    shadow = actions.add_parser(
        "shadow", help="score every event with VERSION beside LATEST (the challenger), or "
        "--clear to stop", description="Make VERSION the challenger of NAME: every worker "
        "loads it beside the champion (LATEST) with the same checks as a swap, scores every "
        "event with both in the same batch and sends the challenger's output alongside, "
        "leaving the champion's unchanged. Workers started later load it from the store; "
        "--publish tells the running ones.", epilog=EPILOG)
    shadow.add_argument("name")
    shadow.add_argument("version", nargs="?")
    shadow.add_argument("--clear", action="store_true", help="end the shadow of NAME")
    for p in (promote, rollback, shadow):
        p.add_argument("--publish", action="store_true", help="send a model-updates event")
    models.set_defaults(run=run)


def run(args: argparse.Namespace, context: Context) -> int:
    from tickcast.cli.train import publish
    from tickcast.models.registry import ModelStore

    model_dir = context.settings.model_dir
    store = ModelStore(model_dir)
    if args.action == "list":
        names = [args.name] if args.name else store.names()
        if not names:
            print(f"no models in {model_dir} (tickcast train prices|sentiment|textgen)")
        for name in names:
            challenger = store.challenger(name)
            for info in store.versions(name):
                stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime(info.created_at / 1000))
                mark = "*" if info.latest else "~" if info.version == challenger else " "
                print(f"{mark} {name:<16} {info.version:<26} {stamp}")
        return 0
    if args.action == "show":
        version = args.version or store.latest(args.name)
        if version is None:
            raise UsageError(f"{args.name} has no LATEST version in {model_dir}")
        manifest = store.verify(args.name, version)
        print(json.dumps(manifest.to_dict(), indent=2))
        print(f"report: {store.path(args.name, version) / 'report.md'}")
        return 0
    if args.action == "shadow":
        return _shadow(args, context, store)
    if args.action == "promote":
        manifest = store.promote(args.name, args.version)
    else:
        manifest = store.rollback(args.name)
    print(f"{manifest.name} LATEST is now {manifest.version}")
    if args.publish:
        publish(manifest, context, rollback=args.action == "rollback")
    return 0


def _shadow(args: argparse.Namespace, context: Context, store: Any) -> int:
    from tickcast.cli.train import publish

    if args.clear == (args.version is not None):
        raise UsageError("give a VERSION to shadow, or --clear to end the shadow")
    if args.clear:
        version = store.clear_challenger(args.name)
        if version is None:
            print(f"{args.name} has no challenger")
            return 0
        print(f"{args.name}: {version} is no longer in shadow")
        if args.publish:
            publish(store.verify(args.name, version), context, role="challenger", clear=True)
        return 0
    manifest = store.set_challenger(args.name, args.version)
    print(f"{args.name}: {args.version} is the challenger of {store.latest(args.name)}")
    if args.publish:
        publish(manifest, context, role="challenger")
    return 0
