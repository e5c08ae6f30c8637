import json

import pytest

from lil_transformy import data
from lil_transformy.errors import LilTransformyError


def write_slice(folder, stories, validation):
    folder.mkdir(exist_ok=True)
    (folder / data.TRAIN_FILE).write_text("".join(json.dumps({"text": s}) + "\n" for s in stories))
    (folder / data.VALIDATION_FILE).write_text(validation)


def test_split_is_fixed_and_documented(tmp_path):
    paragraphs = [f"Paragraph {i}." for i in range(10)]
    write_slice(tmp_path, ["Story one.", "Story two.\n\nSecond paragraph."], "\n\n".join(paragraphs))
    corpus = data.load_corpus(tmp_path)
    assert corpus.train == ["Story one.", "Story two.\n\nSecond paragraph.", "\n\n".join(paragraphs[:8])]
    assert corpus.heldout == ["\n\n".join(paragraphs[8:])]


def test_real_slice_shape(token_data_dir):
    corpus = data.load_corpus(token_data_dir)
    assert len(corpus.train) == 245 + 1 and len(corpus.heldout) == 1
    assert corpus.train[0].startswith("One day, a little girl named Lily")


def test_environment_variable_names_the_folder(tmp_path, monkeypatch):
    write_slice(tmp_path, ["A story."], "\n\n".join(["p"] * 5))
    monkeypatch.setenv(data.DATA_ENV, str(tmp_path))
    assert data.load_corpus().train[0] == "A story."


def test_missing_folder_says_how_to_fix(tmp_path):
    with pytest.raises(LilTransformyError, match="does not exist: point LIL_TRANSFORMY_DATA"):
        data.load_corpus(tmp_path / "nowhere")


def test_unreadable_file_is_a_clear_error(tmp_path):
    write_slice(tmp_path, ["A story."], "p\n\nq")
    (tmp_path / data.TRAIN_FILE).write_text("not json\n")
    with pytest.raises(LilTransformyError, match="cannot read TinyStories"):
        data.load_corpus(tmp_path)


def test_no_folder_and_no_hub_names_both_fixes(tmp_path, monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    monkeypatch.setenv("LIL_TRANSFORMY_CACHE", str(tmp_path))
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(LilTransformyError) as error:
        data.load_corpus()
    assert "LIL_TRANSFORMY_DATA" in str(error.value) and "huggingface.co" in str(error.value)
    assert not (tmp_path / "tinystories-hub" / data.TRAIN_FILE).exists()  # nothing half-written
