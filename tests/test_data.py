import hashlib
import json
import os
import subprocess
import sys

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


def test_a_truncated_file_names_the_file_and_the_line(tmp_path):
    write_slice(tmp_path, ["A story."] * 100 + ["A story cut"], "p\n\nq")
    path = tmp_path / data.TRAIN_FILE
    path.write_text(path.read_text()[:-5])  # the last line loses its closing quote and brace
    with pytest.raises(LilTransformyError, match=rf"cannot read {path}, line 101: expected one JSON object"):
        data.load_corpus(tmp_path)


def test_the_course_ships_the_slice_unchanged():
    """The default corpus is the shared slice, byte for byte (hashes from its README)."""
    expected = {data.TRAIN_FILE: "1c41434b9d6d94a29760cd58d08a0b111045203feda3d90f7673bcb1bd6c320c",
                data.VALIDATION_FILE: "5fc1fb0113df62b567fb271806cd645ce8d75f59c58ca0b764c03d3b6ff34ca6"}
    for name, sha256 in expected.items():
        assert hashlib.sha256((data.BUNDLED / name).read_bytes()).hexdigest() == sha256, name
    readme = (data.BUNDLED / "README.md").read_text()
    assert "CDLA-Sharing-1.0" in readme and "arXiv:2305.07759" in readme


def test_no_setting_reads_the_shipped_slice(monkeypatch):
    monkeypatch.delenv(data.DATA_ENV, raising=False)
    corpus = data.load_corpus()
    assert corpus.source == str(data.BUNDLED) and len(corpus.train) == 245 + 1


def test_a_relative_data_path_is_made_absolute_for_every_child(tmp_path):
    """Kernels and graded cells run in other folders: they must inherit the folder the user meant."""
    write_slice(tmp_path / "mine", ["A story."], "\n\n".join(["p"] * 5))
    (tmp_path / "elsewhere").mkdir()
    child = ("import os, subprocess, sys; import lil_transformy.paths; os.chdir('elsewhere'); "
             "print(subprocess.run([sys.executable, '-c', 'from lil_transformy.data import load_corpus; "
             "print(load_corpus().source)'], capture_output=True, text=True).stdout)")
    done = subprocess.run([sys.executable, "-c", child], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, data.DATA_ENV: "mine"})
    assert done.stdout.strip() == str(tmp_path / "mine"), done.stderr


def test_no_hub_names_the_fixes(tmp_path, monkeypatch):
    monkeypatch.setenv(data.DATA_ENV, "hub")
    monkeypatch.setenv("LIL_TRANSFORMY_CACHE", str(tmp_path))
    monkeypatch.setattr("datasets.load_dataset", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("offline")))
    with pytest.raises(LilTransformyError) as error:
        data.load_corpus()
    assert "LIL_TRANSFORMY_DATA" in str(error.value) and "huggingface.co" in str(error.value)
    assert "the slice the course ships" in str(error.value)
    assert not (tmp_path / "tinystories-hub" / data.TRAIN_FILE).exists()  # nothing half-written
