"""Students who want the points without the work, graded in ONE gradebook with honest students.

Each attacker hands in a stub (or a known-broken module) plus an attack: on the grader (replace
`grade`, ship pytest.py / conftest.py / sitecustomize.py, inject environment variables, patch torch or
pytest, skip the checks, import the reference), on classmates and the gradebook (read, write, delete),
or on the machine (exit, leave a process running, allocate 50 GiB, loop forever). Every verdict must
be the one their honest code earns, every honest grade intact, and grades.csv complete.
"""
import os
import socket
import subprocess
import threading

import nbformat
import pytest

from lil_transformy import course
from lil_transformy.authoring.exercises import expected_exercises
from lil_transformy.course import release
from lil_transformy.grading.sandbox import bwrap
from lil_transformy.paths import REPO_ROOT
from lil_transformy.stages import get_stage

pytestmark = [pytest.mark.timeout(1800),
              pytest.mark.skipif(bwrap() is None, reason="grading needs bubblewrap (apt-get install bubblewrap)")]

STAGE_00, STAGE_04 = get_stage("00"), get_stage("04")
MARKER = "lt-attack-marker-7431"  # an attacker's lingering process carries this in its command line

# Story cells: run in the student's own kernel only; autograde never executes them.
NOTEBOOK_ATTACKS = {
    "replaces_grade": "import lil_transformy.grading.judge as g\ng.grade = lambda *a, **k: print('=> 2 of 2 points')",
    "injects_environment": ("import os\nos.environ['PYTHONPATH'] = {repo!r}\nos.environ['PYTEST_PLUGINS'] = 'evil'\n"
                            "os.chdir({repo!r} + '/solutions')"),
}
# Module code, run when the checks import the student's module.
MODULE_ATTACKS = {
    "patches_pytest": ("import pytest, _pytest.outcomes\npytest.fail = _pytest.outcomes.fail = lambda *a, **k: None\n"
                       "import lil_transformy.grading.checking as c\nc.expect = lambda *a, **k: None\n"),
    "skips_every_check": "import pytest\npytest.skip('nothing to see', allow_module_level=True)\n",
    "imports_the_reference": ("import sys\nsys.path[:0] = [{repo!r}]\n"
                              "from solutions.stage_00_data import *  # noqa\n"),
    "reads_the_reference": ("exec(open({repo!r} + '/solutions/stage_00_data.py').read())\n"),
    "writes_the_gradebook_and_classmates": (
        "import os, shutil, sqlite3\n"
        "for attempt in [lambda: sqlite3.connect({root!r} + '/gradebook.db').execute('delete from grade'),\n"
        "                lambda: open({root!r} + '/submitted/honest/stage_00/stage_00_data.py', 'w').write('x'),\n"
        "                lambda: shutil.rmtree({root!r} + '/submitted/honest'),\n"
        "                lambda: open({repo!r} + '/checks/conftest.py', 'a').write('# pwned'),\n"
        "                lambda: open('/tmp/' + {marker!r}, 'w').write('x')]:\n"
        "    try:\n        attempt()\n    except Exception:\n        pass\n"),
    "phones_home": ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)"
                    ".sendall(b'leak')\nexcept OSError:\n    pass\n"),
    "exits_at_import": "import sys\nsys.exit(0)\n",
    "kills_its_process": "import os\nos._exit(0)\n",
    "leaves_a_process_running": ("import os\nif os.fork() == 0:\n    os.setsid()\n"
                                 "    os.execvp('sleep', ['sleep', '600', {marker!r}])\n"),
    "allocates_50_gib": "import numpy\nhog = numpy.ones(50 * 2**30, dtype=numpy.uint8)\n",
    "loops_forever": "while True:\n    pass\n",
}
SHIPPED_FILES = {
    "pytest.py": "import sys\nprint('all passed')\nsys.exit(0)\n",
    "conftest.py": "def pytest_runtest_makereport(item, call):\n    pass\n",
    "sitecustomize.py": "import builtins\nbuiltins.print('owned')\n",
}
NAN_LOGITS = ("        x = self.token_embedding(idx)", "        x = self.token_embedding(idx) * float('nan')")
PATCHED_TORCH = "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"


def submit(root, student, stage, modules, notebook_cell=None, extra_files=None):
    folder = course.hand_in(root, student, stage, files={**modules, **(extra_files or {})})
    if notebook_cell:
        path = folder / f"stage_{stage.number}.ipynb"
        notebook = nbformat.read(path, as_version=4)
        notebook.cells.insert(1, nbformat.v4.new_code_cell(notebook_cell))
        nbformat.write(notebook, path)


def reference(module_name, old=None, new=None):
    """The reference module, with `old` replaced by `new` (it must occur)."""
    text = (REPO_ROOT / "solutions" / module_name).read_text()
    assert old is None or old in text, f"{old!r} is not in {module_name}"
    return text if old is None else text.replace(old, new)


@pytest.fixture(scope="module")
def listener():
    """A loopback server a student's code tries to reach; what it hears is kept."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    heard, stop = [], threading.Event()

    def serve():
        while not stop.is_set():
            try:
                connection, _ = server.accept()
                heard.append(connection.recv(100))
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], heard
    stop.set()
    thread.join()
    server.close()


@pytest.fixture(scope="module")
def graded(tmp_path_factory, listener):
    root = tmp_path_factory.mktemp("attacks") / "course"
    course.build(root, [STAGE_00, STAGE_04])
    stub00 = expected_exercises()[f"{STAGE_00.module}.py"]
    port, _ = listener
    fill = {"repo": str(REPO_ROOT), "root": str(root), "marker": MARKER, "port": port}
    expected = {}
    submit(root, "honest", STAGE_00, {f"{STAGE_00.module}.py": reference(f"{STAGE_00.module}.py")})
    expected["honest", "stage_00"] = 2
    for student, cell in NOTEBOOK_ATTACKS.items():
        submit(root, student, STAGE_00, {}, notebook_cell=cell.format(**fill))
        expected[student, "stage_00"] = 0
    for student, code in MODULE_ATTACKS.items():
        submit(root, student, STAGE_00, {f"{STAGE_00.module}.py": code.format(**fill) + stub00})
        expected[student, "stage_00"] = 0
    submit(root, "ships_pytest_conftest_sitecustomize", STAGE_00, {}, extra_files=SHIPPED_FILES)
    expected["ships_pytest_conftest_sitecustomize", "stage_00"] = 0
    submit(root, "deleted_the_notebook", STAGE_00, {f"{STAGE_00.module}.py": reference(f"{STAGE_00.module}.py")})
    os.remove(root / "submitted" / "deleted_the_notebook" / "stage_00" / "stage_00.ipynb")
    expected["deleted_the_notebook", "stage_00"] = 0
    (root / "submitted" / "hands_in_nothing").mkdir()  # a student folder without the assignment
    expected["hands_in_nothing", "stage_00"] = 0

    solved = {f"{m}.py": reference(f"{m}.py") for m in release.stage_dependencies(STAGE_04)}
    module04 = f"{STAGE_04.module}.py"
    submit(root, "honest", STAGE_04, {**solved, module04: reference(module04)})
    expected["honest", "stage_04"] = 6
    submit(root, "nan_logits", STAGE_04, {**solved, module04: reference(module04, *NAN_LOGITS)})
    expected["nan_logits", "stage_04"] = 0
    peeking = reference(module04, '    scores = scores.masked_fill(~causal_mask(q.size(-2), q.device), '
                                  'float("-inf"))\n', "")
    submit(root, "peeks_and_patches_torch", STAGE_04, {**solved, module04: PATCHED_TORCH + peeking})
    expected["peeks_and_patches_torch", "stage_04"] = 3  # as without the patch: causality, and the loss that used the future
    before = {p: p.read_bytes() for p in (root / "submitted" / "honest").rglob("*") if p.is_file()}
    scores, failed = course.grade_class(root, [STAGE_00, STAGE_04])
    return root, scores, failed, expected, before


def test_every_verdict_is_the_one_the_code_earns(graded):
    root, scores, failed, expected, _ = graded
    got = {key: scores[key][0] for key in expected if key in scores}
    wrong = {key: (got.get(key), want) for key, want in expected.items() if got.get(key) != want}
    assert wrong == {}, f"(student, assignment): (score, expected) {wrong}"


def test_grades_csv_has_every_student_for_every_stage(graded):
    root, scores, failed, expected, _ = graded
    students = {p.name for p in (root / "submitted").iterdir()}
    assert {(s, a) for s in students for a in ("stage_00", "stage_04")} <= set(scores)
    assert "nothing was submitted" in (root / "feedback" / "hands_in_nothing" / "stage_00" / "stage_00.html").read_text()
    assert ("deleted_the_notebook", "stage_00") in failed
    assert (root / "feedback" / "deleted_the_notebook" / "stage_00" / "stage_00.html").exists()


def test_nobody_reached_a_classmate_the_gradebook_the_repository_the_network_or_the_machine(graded, listener):
    root, scores, failed, expected, before = graded
    assert listener[1] == [], "a student's code reached the network"
    after = {p: p.read_bytes() for p in (root / "submitted" / "honest").rglob("*") if p.is_file()}
    assert after == before, "an honest student's submission changed"
    assert "# pwned" not in (REPO_ROOT / "checks" / "conftest.py").read_text()
    assert not os.path.exists(f"/tmp/{MARKER}")
    lingering = subprocess.run(["pgrep", "-f", MARKER], capture_output=True, text=True).stdout
    assert lingering == "", f"a student's process outlived its grading: {lingering}"


def test_feedback_shows_the_judges_messages(graded):
    root = graded[0]
    feedback = (root / "feedback" / "peeks_and_patches_torch" / "stage_04" / "stage_04.html").read_text()
    assert "your model sees the future" in feedback
    assert "finite numbers" in (root / "feedback" / "nan_logits" / "stage_04" / "stage_04.html").read_text()
