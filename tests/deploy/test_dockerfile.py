"""Dockerfile: the image runs as a fixed, numeric, non-root user that owns its state folders."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[2]


def instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` in order, continuation lines joined, comments dropped."""
    text = (REPO / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    result = []
    for line in joined.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def test_the_last_user_is_numeric_and_not_root() -> None:
    steps = instructions()
    users = [i for i, (word, _) in enumerate(steps) if word == "USER"]
    assert users, "the Dockerfile sets no USER: the container would run as root"
    user = steps[users[-1]][1]
    uid, _, gid = user.partition(":")
    assert uid.isdigit(), f"USER {user}: use a numeric uid (Kubernetes runAsNonRoot checks it)"
    assert int(uid) != 0
    assert not gid or (gid.isdigit() and int(gid) != 0)
    # Nothing after it switches back, and the user is created with that uid.
    assert all(word != "USER" for word, _ in steps[users[-1] + 1:])
    created = " ".join(args for word, args in steps[:users[-1]] if word == "RUN")
    assert re.search(rf"useradd\b[^&]*--uid {uid}\b", created)


def test_the_user_owns_the_state_and_model_folders() -> None:
    steps = instructions()
    user = [args for word, args in steps if word == "USER"][-1]
    env = dict(item.split("=", 1) for word, args in steps if word == "ENV"
               for item in shlex.split(args))
    compose = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    model_dir = compose["x-tickcast"]["environment"]["TICKCAST_MODEL_DIR"]
    chowned: set[str] = set()
    for word, args in steps:
        if word == "RUN":
            for owner, paths in re.findall(r"chown (\S+) ([^&]+)", args):
                if owner in (user, user.split(":")[0]):
                    chowned.update(paths.split())
    assert {env["TICKCAST_STATE_DIR"], model_dir} <= chowned
    assert env["TICKCAST_METRICS_ADDR"] == "0.0.0.0"  # /metrics reachable from Prometheus
