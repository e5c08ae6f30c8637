"""One training per stage version: a stage trained with the shared budget is kept, and reused.

Whatever trains a student's stage with the shared budget (seed 0) first, the loss check, the stage's notebook or
`lil-transformy train NN`, keeps what it trained here: the weights, the learning curve, the held-out loss, and
what the loss check found. The others reuse it for as long as what it was trained from is unchanged: the stage's
own module and the stage modules it imports (not the whole folder), the checks, the library, the reference report,
the data, the device, torch's version and its threads. One entry per stage and implementation folder: folders
never evict each other. Only a student's own runs read it: grading trains in fresh children and never reads a
cache the student can write, and quick mode neither reads nor fills it.

Every training that fills it is logged, one JSON line each, in TRAINING_LOG: tests and measurements count them.
"""
import ast
import hashlib
import json
import os
import shutil
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

import torch

from lil_transformy.paths import CHECKS, EVOLUTION_REPORT, PACKAGE, cache_dir
from lil_transformy.stages import DETOURS, STAGES, get_stage, implementation_folder, model_class
from lil_transformy.tokens import TokenData
from lil_transformy.train import SHARED, TrainResult, new_model, pick_device, train


def trainings_dir() -> Path:
    return cache_dir() / "trainings"


def training_log() -> Path:
    """One JSON line per training kept here: {"stage", "folder", "by", "seconds", "when"}."""
    return trainings_dir() / "log.jsonl"


def entry_file(number: str, folder: Path) -> Path:
    """Where stage `number` of the implementation `folder` is kept: a folder of its own per implementation."""
    return trainings_dir() / hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12] / f"stage_{number}.pt"


def modules_trained_from(number: str, folder: Path) -> list[Path]:
    """The stage's module and the stage modules it imports, transitively (read with ast, never imported)."""
    names = {stage.module for stage in STAGES + DETOURS}
    todo, seen = [get_stage(number).module], set()
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            tree = ast.parse((folder / f"{name}.py").read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue  # its bytes (or its absence) are in the key; it cannot train as it is
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                dotted = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
                todo += [part for text in dotted for part in text.split(".") if part in names]
    return [folder / f"{name}.py" for name in sorted(seen)]


def training_key(number: str, folder: Path, data: TokenData) -> str:
    """What a training of stage `number` in `folder` is made from; equal keys, the same training."""
    digest = hashlib.sha256(f"{number} {data.fingerprint} torch {version('torch')} {pick_device(SHARED.device).type} "
                            f"threads {torch.get_num_threads()}".encode())
    library = sorted(PACKAGE.rglob("*.py"))
    checks = [*sorted(CHECKS.glob("*.py")), *sorted((CHECKS / get_stage(number).assignment).glob("*.py"))]
    for path in [*library, *checks, EVOLUTION_REPORT, *modules_trained_from(number, folder)]:
        content = path.read_bytes() if path.is_file() else b"missing"
        digest.update(f"\0{path.name}\0{len(content)}\0".encode() + content)
    return digest.hexdigest()


def latest_entry(number: str, folder: Path) -> dict | None:
    """The last training kept for stage `number` of `folder`, current or not (entry["key"] says for what)."""
    try:
        return torch.load(entry_file(number, folder), weights_only=True)
    except Exception:  # none yet, or unreadable: as good as none
        return None


def kept(number: str, folder: Path, data: TokenData) -> dict | None:
    """The training kept for stage `number` of `folder` if nothing it was trained from has changed since, else None."""
    entry = latest_entry(number, folder)
    return entry if entry is not None and entry.get("key") == training_key(number, folder, data) else None


def save(number: str, folder: Path, entry: dict) -> None:
    forget_vanished_folders()
    path = entry_file(number, folder)
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / "folder.txt").write_text(str(folder.resolve()))
    partial = path.with_suffix(f".{os.getpid()}.partial")
    torch.save(entry, partial)
    os.replace(partial, path)  # whole or not at all, and a notebook and a check may finish at once


def forget_vanished_folders() -> None:
    """The entries of implementation folders that no longer exist (a mutant's or a test's temporary copy) go."""
    for kept_folder in trainings_dir().glob("*/folder.txt"):
        if not Path(kept_folder.read_text()).is_dir():
            shutil.rmtree(kept_folder.parent, ignore_errors=True)


def remember_check(number: str, folder: Path, data: TokenData, loss: float, leak: str | None) -> None:
    """What the loss check found on the kept training (its loss, and where the trained model saw the future)."""
    entry = kept(number, folder, data)
    if entry is not None:
        save(number, folder, {**entry, "check": {"loss": loss, "leak": leak}})


def reused(entry: dict) -> str:
    """The words on reuse: from the cache, who trained it and when."""
    when = time.strftime("%H:%M on %d %b", time.localtime(entry["when"]))
    return (f"from the cache: trained by {entry['by']} at {when} ({entry['steps']} steps, {entry['seconds']:.0f} s), "
            f"and nothing it was trained from has changed since")


def shared_training(number: str, impl: str, data: TokenData, by: str, progress=True,
                    label: str = "training") -> tuple[TrainResult, str]:
    """Stage `number` of `impl` trained with the shared budget, seed 0: the kept training when nothing it was trained
    from has changed, else trained now (with its learning curve and held-out loss) and kept. Returns the result and
    how it was had ("trained 1130 steps" or "from the cache: ..."). by: who trains, for the message on reuse."""
    folder = implementation_folder(impl)
    model_of_stage = model_class(number, impl)
    entry = kept(number, folder, data)
    if entry is not None:
        cfg = replace(SHARED, vocab_size=data.vocab.size)
        model, _ = new_model(model_of_stage, cfg, pick_device(cfg.device))
        try:
            model.load_state_dict(entry["state"])
            return TrainResult(model, cfg, entry["val_loss"], entry["seconds"], entry["history"]), reused(entry)
        except (RuntimeError, KeyError):  # a module that builds other weights than it saved: train it again
            pass
    key = training_key(number, folder, data)
    result = train(model_of_stage, data, SHARED, progress=progress, label=label)
    state = {name: value.detach().cpu() for name, value in result.model.state_dict().items()}
    save(number, folder, {"key": key, "state": state, "history": result.history, "val_loss": result.val_loss,
                          "seconds": result.seconds, "steps": result.config.steps, "by": by, "when": time.time(),
                          "check": None})
    with training_log().open("a") as log:
        log.write(json.dumps({"stage": number, "folder": str(folder), "by": by, "seconds": round(result.seconds, 1),
                              "when": time.time()}) + "\n")
    return result, f"trained {result.config.steps} steps in {result.seconds:.0f} s"


def trainings_logged() -> list[dict]:
    """Every training kept so far under this cache, in order."""
    log = training_log()
    return [json.loads(line) for line in log.read_text().splitlines() if line] if log.exists() else []
