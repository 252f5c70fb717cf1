"""The text generator: requested length, vocabulary only, reproducible, and stepping with
carried states gives what the whole model gives on the whole prefix."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from tickcast.models.architectures import build_char_lm
from tickcast.models.artifacts import ArtifactError, write_artifact
from tickcast.models.backend import keras, set_seed, tensorflow
from tickcast.models.predictors import load_predictor
from tickcast.models.preprocessing import BOUNDARY, UNKNOWN_CHAR, CharVocabulary
from tickcast.models.registry import ModelStore
from tickcast.models.textgen import CHUNK, TextGenerator
from tickcast.training.textgen import TextGenResult

VOCAB = CharVocabulary(chars=tuple(" abcdefghij.G"))


def _generator(tiny_textgen: TextGenResult) -> TextGenerator:
    generator = load_predictor(tiny_textgen.path)
    assert isinstance(generator, TextGenerator)
    return generator


def _untrained(units: tuple[int, ...], seed: int = 0) -> TextGenerator:
    set_seed(seed)
    return TextGenerator(build_char_lm(vocab_size=VOCAB.size, embed_dim=6, units=units),
                         VOCAB)


def _greedy_by_whole_prefix(generator: TextGenerator, prompt: str, length: int) -> str:
    """Reference: run the whole model on the whole prefix for every new character."""
    tf = tensorflow()
    whole = tf.function(lambda x: generator.model(x, training=False),
                        input_signature=[tf.TensorSpec([1, None], tf.int32)])
    ids = [BOUNDARY, *generator.vocabulary.encode(prompt)]
    for _ in range(length):
        logits = np.array(whole(np.array([ids], np.int32)))[0, -1]
        logits[[BOUNDARY, UNKNOWN_CHAR]] = -np.inf
        ids.append(int(np.argmax(logits)))
    return prompt + generator.vocabulary.decode(ids[1 + len(prompt):])


def test_generates_the_requested_length_from_the_vocabulary(
        tiny_textgen: TextGenResult) -> None:
    generator = _generator(tiny_textgen)
    prompts = ["Gold prices ", "", "x\ny"]  # whitespace is kept, as spaces
    texts = generator.generate(prompts, length=150, temperature=0.8, seed=3)
    allowed = set(generator.vocabulary.chars)
    for prompt, text in zip(prompts, texts, strict=True):
        assert text.startswith(prompt.replace("\n", " "))
        assert len(text) == len(prompt) + 150
        assert set(text[len(prompt):]) <= allowed
    assert generator.generate(["abc"], length=0, seed=1) == ["abc"]


def test_same_seed_same_text_and_another_seed_another(tiny_textgen: TextGenResult) -> None:
    generator = _generator(tiny_textgen)
    first = generator.generate(["Gold prices"] * 3, length=80, temperature=1.0, seed=11)
    again = _generator(tiny_textgen).generate(["Gold prices"] * 3, length=80,
                                              temperature=1.0, seed=11)
    other = generator.generate(["Gold prices"] * 3, length=80, temperature=1.0, seed=12)
    assert first == again
    assert first != other
    assert len(set(first)) == 3  # the rows of one batch draw different numbers


def test_stop_at_end_ends_texts_where_the_model_ends_them(
        tiny_textgen: TextGenResult) -> None:
    generator = _generator(tiny_textgen)
    texts = generator.generate([""] * 20, length=400, temperature=1.0, seed=5, stop_at_end=True)
    assert all(len(t) <= 400 and "\n" not in t for t in texts)
    assert any(len(t) < 400 for t in texts)  # a trained model does end texts
    stream = generator.stream(prompts=["Gold", "Oil"], temperature=0.8, seed=2, max_length=60,
                              batch_size=4)
    streamed = [next(stream) for _ in range(10)]
    assert all(t and t == t.strip() and t.startswith(("Gold", "Oil")) for t in streamed)


@pytest.mark.parametrize("units", [(8,), (8, 6)])
def test_stepping_with_states_equals_the_whole_model_on_the_whole_prefix(
        units: tuple[int, ...]) -> None:
    generator = _untrained(units)
    length = CHUNK + 10  # crosses a chunk boundary: states carry between calls
    for prompt in ("", "Gab"):
        stepped = generator.generate([prompt], length=length, temperature=1e-6, seed=0)[0]
        assert stepped == _greedy_by_whole_prefix(generator, prompt, length)


def test_prompts_of_different_lengths_share_a_batch() -> None:
    generator = _untrained((8,), seed=4)
    prompts = ["", "a", "Gabba.", "j" * 70]  # one prompt longer than a chunk
    batched = generator.generate(prompts, length=30, temperature=1e-6, seed=0)
    alone = [generator.generate([p], length=30, temperature=1e-6, seed=0)[0] for p in prompts]
    assert batched == alone


def test_bad_arguments_are_explained(tiny_textgen: TextGenResult) -> None:
    generator = _generator(tiny_textgen)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        generator.generate(["a"], length=5, temperature=0)
    with pytest.raises(ValueError, match="length must be >= 0"):
        generator.generate(["a"], length=-1)
    with pytest.raises(TypeError, match="not one string"):
        generator.generate("a", length=5)
    with pytest.raises(ValueError, match="at least one prompt"):
        generator.stream(prompts=[])


def test_the_artifact_round_trips_through_the_store_and_the_safe_loader(
        tiny_textgen: TextGenResult, tmp_path: Path) -> None:
    store = ModelStore(tmp_path / "models")
    manifest = tiny_textgen.manifest
    shutil.copytree(tiny_textgen.path, store.path(manifest.name, manifest.version))
    store.promote(manifest.name, manifest.version)
    assert store.verify("textgen-lstm", store.latest("textgen-lstm") or "").kind == "textgen"
    loaded = load_predictor(store.path(manifest.name, manifest.version))
    assert isinstance(loaded, TextGenerator)
    assert loaded.version == manifest.version
    # The vocabulary lives in preprocessing.json, as plain JSON; nothing is pickled.
    state = json.loads((tiny_textgen.path / "preprocessing.json").read_text())
    assert CharVocabulary.from_dict(state) == loaded.vocabulary
    assert {p.suffix for p in tiny_textgen.path.iterdir()} <= {".json", ".keras", ".md"}
    original = _generator(tiny_textgen)
    assert (loaded.generate(["Gold"], length=60, seed=9)
            == original.generate(["Gold"], length=60, seed=9))


def _artifact(tmp_path: Path, model: object, vocab: CharVocabulary) -> Path:
    def write(folder: Path) -> None:
        model.save(folder / "model.keras")  # type: ignore[attr-defined]
        (folder / "preprocessing.json").write_text(json.dumps(vocab.to_dict()))

    path, _ = write_artifact(tmp_path / "tg", name="tg", kind="textgen", version="v1",
                             write_files=write, metrics={}, input_spec={}, data={})
    return path


def test_a_model_the_step_cannot_reproduce_is_refused(tmp_path: Path) -> None:
    k = keras()
    inputs = k.Input(shape=(None,), dtype="int32")
    x = k.layers.Embedding(VOCAB.size, 4, name="embedding")(inputs)
    x = k.layers.LSTM(4, return_sequences=True, name="lstm_0")(x)
    x = k.layers.Dense(4, activation="relu", name="extra")(x)  # not in the step
    model = k.Model(inputs, k.layers.Dense(VOCAB.size, name="logits")(x))
    with pytest.raises(ArtifactError, match="does not fit a textgen: not a character LSTM"):
        load_predictor(_artifact(tmp_path, model, VOCAB))


def test_a_vocabulary_that_does_not_fit_the_model_is_refused(tmp_path: Path) -> None:
    model = build_char_lm(vocab_size=VOCAB.size, embed_dim=4, units=(4,))
    smaller = CharVocabulary(chars=VOCAB.chars[:-1])
    with pytest.raises(ArtifactError, match="the vocabulary has 14"):
        load_predictor(_artifact(tmp_path, model, smaller))
