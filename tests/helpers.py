"""Small helpers shared by tests."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_tool(name: str, install: str) -> str:
    """Path of a system tool; CI (which installs it in .ci/run) fails without it, a developer
    machine skips the test with the install hint."""
    import os
    import shutil

    import pytest

    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; .ci/run installs it ({install})")
        pytest.skip(f"{name} is not installed ({install})")
    return path


def wait_for(predicate, what: str, timeout: float = 60.0) -> None:
    """Poll ``predicate`` until true; fail the test after ``timeout`` seconds."""
    import time

    import pytest

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.25)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


def make_pki(folder, *, host: str = "127.0.0.1") -> dict:
    """A throwaway CA and a certificate for ``host`` (an IP SAN) signed by it, made with
    openssl: ``{"ca": ca.pem, "cert": server.pem, "key": server.key, "keystore": key+chain}``.
    """
    import subprocess
    from pathlib import Path

    openssl = require_tool("openssl", "apt-get install openssl")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {name: folder / file for name, file in [
        ("ca", "ca.pem"), ("ca_key", "ca.key"), ("cert", "server.pem"), ("key", "server.key"),
        ("keystore", "server-keystore.pem")]}
    csr, san = folder / "server.csr", folder / "san.ext"
    san.write_text(f"subjectAltName=IP:{host}\n")

    def run(*args: object) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
        "/CN=tickcast test CA", "-keyout", paths["ca_key"], "-out", paths["ca"])
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={host}",
        "-keyout", paths["key"], "-out", csr)
    run("x509", "-req", "-in", csr, "-CA", paths["ca"], "-CAkey", paths["ca_key"],
        "-CAcreateserial", "-days", "2", "-extfile", san, "-out", paths["cert"])
    # Kafka's PEM keystore: the (PKCS#8, unencrypted) key, then the certificate chain.
    paths["keystore"].write_text(paths["key"].read_text() + paths["cert"].read_text()
                                 + paths["ca"].read_text())
    return paths


def biased_forecaster(store_root, source, *, bias: float, created_at: int | None = None):
    """A new version of the forecaster artifact at ``source`` whose output layer is shifted by
    ``bias`` (in scaled log returns): the same model, made worse by a known, fixed amount.
    Returns its manifest."""
    import json
    import shutil
    from pathlib import Path

    from tickcast.models.artifacts import (
        MODEL_FILE,
        PREPROCESSING_FILE,
        new_version,
        verify_artifact,
        write_artifact,
    )
    from tickcast.models.predictors import load_keras_model

    source = Path(source)
    original = verify_artifact(source)
    model = load_keras_model(source / MODEL_FILE)
    kernel, offset = model.layers[-1].get_weights()
    model.layers[-1].set_weights([kernel, offset + bias])

    def write_files(tmp: Path) -> None:
        model.save(tmp / MODEL_FILE)
        shutil.copy(source / PREPROCESSING_FILE, tmp / PREPROCESSING_FILE)

    _, manifest = write_artifact(
        Path(store_root) / original.name, name=original.name, kind=original.kind,
        version=new_version(), write_files=write_files, metrics={},
        input_spec=original.input, data={**original.data, "biased_by": bias},
        created_at=created_at)
    json.dumps(manifest.to_dict())  # it serialises
    return manifest


class Predicting:
    """Mixin for test forecasters that define ``predict``: the price processor's three steps
    on top of it. The model call (``predict_outputs``, on the inference thread) is ``predict``
    itself, so a test forecaster that fails, fails there, as a real model call would."""

    def predict(self, windows):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def prepare(self, windows):
        import numpy as np

        from tickcast.models.predictors import Prepared

        w = np.asarray(windows, dtype=np.float64)
        return Prepared(w, np.zeros(len(w)), w)

    def predict_outputs(self, features):
        return self.predict(features)

    def complete(self, prepared, outputs):
        return outputs


class PointForecaster(Predicting):
    """Mixin for test forecasters that define ``predict_prices``: the processor's contract,
    without intervals."""

    intervals = False

    def predict_prices(self, windows):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def predict(self, windows):
        import numpy as np

        from tickcast.models.predictors import Prediction

        return Prediction(np.asarray(self.predict_prices(windows), dtype=np.float64), None)
