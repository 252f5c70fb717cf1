"""``tickcast models``: list, show, promote and roll back versions in the model store."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from tickcast.cli.common import EPILOG, Context, positive_float
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
    verdict = actions.add_parser(
        "verdict", help="the champion/challenger gate: promote, reject or keep watching NAME's "
        "challenger, from the workers' evidence or a backtest's", description="Read the "
        "paired evidence on NAME's challenger (tickcast models shadow) from every worker's "
        "/metrics, pooled, or from a backtest's summary.json, and apply the gate's rule "
        "(TICKCAST_GATE_MIN_EVENTS, TICKCAST_GATE_MAX_EVENTS, TICKCAST_GATE_ALPHA): "
        "promote if significantly better, reject if significantly worse or no better "
        "after the maximum sample, else keep watching. --apply acts on it.", epilog=EPILOG)
    verdict.add_argument("name")
    verdict.add_argument("--metrics", action="append", metavar="URL",
                         help="a worker's /metrics; repeat for every worker "
                         "[http://TICKCAST_METRICS_ADDR:TICKCAST_METRICS_PORT/metrics]")
    verdict.add_argument("--backtest", type=Path, metavar="DIR",
                         help="decide on a `tickcast backtest` output directory instead")
    verdict.add_argument("--apply", action="store_true",
                         help="act on the decision: promote makes the challenger LATEST, "
                         "reject ends its shadow (with --publish the workers follow and the "
                         "decision is recorded on model-updates)")
    verdict.add_argument("--auto", action="store_true",
                         help="keep reading the workers' evidence every --interval seconds "
                         "until the gate decides, then act as --apply does (with --publish "
                         "through the usual publish path)")
    verdict.add_argument("--interval", type=positive_float, default=30.0,
                         help="--auto: seconds between readings [30]")
    verdict.add_argument("--timeout", type=positive_float,
                         help="--auto: give up (exit 1) after this many seconds [never]")
    verdict.add_argument("--json", action="store_true", help="print the verdict as JSON")
    for p in (promote, rollback, shadow, verdict):
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
    if args.action == "verdict":
        return _verdict(args, context, store)
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


def _verdict(args: argparse.Namespace, context: Context, store: Any) -> int:
    from tickcast.cli.train import publish
    from tickcast.streams.gate import Policy, combine, decide
    from tickcast.verdict import backtest_evidence, live_evidence, read_worker

    settings = context.settings
    challenger, champion = store.challenger(args.name), store.latest(args.name)
    if challenger is None:
        raise UsageError(f"{args.name} has no challenger (tickcast models shadow {args.name} "
                         "VERSION)")
    manifest = store.verify(args.name, challenger)
    kind = manifest.kind
    policy = Policy(min_events=settings.gate_min_events, max_events=settings.gate_max_events,
                    alpha=settings.gate_alpha)
    if args.backtest is not None and (args.metrics or args.auto):
        raise UsageError("--backtest excludes --metrics and --auto (a backtest is done)")
    urls = args.metrics or [f"http://{settings.metrics_addr}:{settings.metrics_port}/metrics"]
    started = time.monotonic()
    while True:
        if args.backtest is not None:
            sources = [backtest_evidence(args.backtest, kind=kind, name=args.name,
                                         challenger=challenger, champion=champion)]
        else:
            sources = [live_evidence(url, read_worker(url), kind=kind, challenger=challenger)
                       for url in urls]
        pooled = combine([s.evidence for s in sources if s.evidence is not None])
        verdict = decide(pooled, policy)
        report = {"name": args.name, "champion": champion, "challenger": challenger,
                  "kind": kind, **verdict.to_dict(),
                  "sources": [{"where": s.where, "note": s.note,
                               "evidence": None if s.evidence is None else s.evidence.n}
                              for s in sources]}
        print(json.dumps(report, indent=2) if args.json else _render_verdict(report),
              flush=True)
        if not args.auto or verdict.decision != "watch":
            break
        if args.timeout is not None and time.monotonic() - started > args.timeout:
            print(f"no decision after {args.timeout:.0f} s", file=sys.stderr)
            return 1
        time.sleep(args.interval)
    if not (args.apply or args.auto) or verdict.decision == "watch":
        return 0
    audit = {"decision": verdict.decision, "rule": verdict.rule,
             "evidence": report["evidence"] | {"policy": report["policy"],
                                               "sources": len(sources)},
             "champion": champion, "decided_at": int(time.time() * 1000)}
    # A challenger trained before the champion is still promoted: workers otherwise ignore a
    # version older than the one serving.
    older = champion is not None and manifest.created_at <= store.verify(
        args.name, champion).created_at
    if verdict.decision == "promote":
        store.promote(args.name, challenger, reason="gate: promote")
        print(f"{args.name} LATEST is now {challenger}")
    else:
        store.clear_challenger(args.name)
        print(f"{args.name}: {challenger} is rejected and no longer in shadow")
    if args.publish:
        if verdict.decision == "promote":
            publish(manifest, context, rollback=older)
        publish(manifest, context, role="challenger", clear=True)
        publish(manifest, context, role="decision", audit=audit)
    else:
        print("note: the workers follow and the decision is recorded on model-updates only "
              "with --publish", file=sys.stderr)
    return 0


def _render_verdict(report: dict[str, Any]) -> str:
    lines = [f"{report['name']}: challenger {report['challenger']} against champion "
             f"{report['champion']} ({report['kind']})"]
    for source in report["sources"]:
        lines.append(f"  {source['where']}: {source['note']}")
    evidence = report["evidence"]
    if evidence is None:
        lines.append("  evidence: none yet")
    elif evidence["kind"] == "auc":
        lines.append(f"  evidence: AUC challenger - champion {evidence['diff']:+.4f} "
                     f"[{evidence['low']:+.4f}, {evidence['high']:+.4f}] on {evidence['n']:,} "
                     f"labelled texts, p={evidence['p_value']:.3g}")
    else:
        lines.append(f"  evidence: Diebold-Mariano {evidence['stat']:+.3f} on "
                     f"{evidence['n']:,} forecasts, p={evidence['p_value']:.3g} (< 0: the "
                     "challenger's errors are smaller)")
    policy = report["policy"]
    lines.append(f"  policy: at least {policy['min_events']:,} paired events, alpha "
                 f"{policy['alpha']}, reject without a significant gain at "
                 f"{policy['max_events']:,}")
    lines.append(f"verdict: {report['decision'].upper()} - {report['rule']}")
    return "\n".join(lines)
