"""A local Prometheus server (Debian's ``prometheus`` binary) scraping local workers.

The same scrape job name and the same alert rules as the Docker stack, with static targets
instead of Docker DNS. Used by ``tickcast demo`` and the integration tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

__all__ = ["RULES_DIR", "LocalPrometheus", "find_prometheus"]

RULES_DIR = Path(__file__).resolve().parent.parent / "deploy" / "prometheus" / "rules"


def find_prometheus() -> str | None:
    return shutil.which("prometheus")


class LocalPrometheus:
    def __init__(self, *, binary: str, targets: list[str], port: int, state_dir: Path,
                 scrape_interval: str = "5s", rules_dir: Path = RULES_DIR) -> None:
        self.binary = binary
        self.targets = targets
        self.port = port
        self.state_dir = state_dir
        self.scrape_interval = scrape_interval
        self.rules_dir = rules_dir
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def config(self) -> dict[str, Any]:
        return {
            "global": {"scrape_interval": self.scrape_interval,
                       "evaluation_interval": self.scrape_interval},
            "rule_files": [str(self.rules_dir / "*.yml")],
            "scrape_configs": [{"job_name": "tickcast",
                                "static_configs": [{"targets": self.targets}]}],
        }

    def start(self, *, wait: float = 30.0) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        config = self.state_dir / "prometheus.yml"
        config.write_text(yaml.safe_dump(self.config()), encoding="utf-8")
        log = open(self.state_dir / "prometheus.log", "ab")  # noqa: SIM115 - lives with proc
        self.proc = subprocess.Popen(
            [self.binary, f"--config.file={config}", f"--storage.tsdb.path={self.state_dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prometheus exited; see {self.state_dir / 'prometheus.log'}")
            try:
                urllib.request.urlopen(f"{self.url}/-/ready", timeout=1).close()  # noqa: S310
                return
            except OSError:
                time.sleep(0.3)
        raise TimeoutError(f"prometheus did not become ready on {self.url}")

    def query(self, expr: str) -> dict[str, Any]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return json.loads(exc.read())

    def api(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}", timeout=10) as r:  # noqa: S310
            return json.loads(r.read())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
