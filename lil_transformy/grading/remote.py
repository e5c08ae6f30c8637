"""Student code in a child process, judged in this one: the same checks, with the student's objects remote.

When grading (``pytest --isolate``), a check never imports the student's module. Its fixtures
hand it `Handle`s instead: stand-ins for the student's module, classes and models, living in a
child process (``python -I``, a clean environment, a sandbox when grading a class). Calling a
handle runs the student's code *there*; what comes back is data only — tensors, numbers,
strings, lists of them — or another handle. The child answers with ``torch.save`` and this side
reads with ``torch.load(weights_only=True)``, which builds data and never runs code, so nothing
the student's module does (patching torch or pytest, printing, exiting) reaches the judge: it
can change only its own outputs, which the checks then compare here.

The library routines the child runs for the judge answer the judge-driven training's questions
(`trainer.py`: a batch's loss and gradients, the logits at the judge's weights), which the judge checks.
"""
import io
import os
import pickle
import select
import subprocess
import sys
from dataclasses import dataclass

import numpy as np
import torch

from lil_transformy.errors import LilTransformyError
from lil_transformy.grading.evidence import Evidence
from lil_transformy.grading.limits import Budget, MachineOverloaded, OverBudget
from lil_transformy.grading.pipe import TooLarge, receive, send

NON_FINITE = ("a row of scores that is all -inf (a mask that hides every key, the diagonal too) gives NaN after the "
              "softmax; so does a division by zero or a log of 0")


class StudentCodeError(Exception):
    """The student's code raised (in the child); the message names the exception."""


class ChildGone(StudentCodeError):
    """The child's answer cannot be used: it exited, crashed or was killed, or sent what no honest code sends."""


@dataclass(frozen=True)
class Ref:
    """A handle's id, as sent to the child."""
    id: int


# ------------------------------------------------------------------------------------------------- judge side
class Remote:
    """A child process holding the student's objects; `Handle`s name them."""

    def __init__(self, child, log_path: str):
        """`child`: a sandbox.Child (command, environment, folder, descriptors to pass, limits)."""
        requests_r, self.requests = os.pipe()
        self.replies, replies_w = os.pipe()
        self.log = open(log_path, "ab")
        self.process = subprocess.Popen([*child.command, str(requests_r), str(replies_w)], env=child.env,
                                        cwd=child.cwd, stdin=subprocess.DEVNULL, stdout=self.log,
                                        stderr=subprocess.STDOUT, pass_fds=(requests_r, replies_w),
                                        preexec_fn=child.preexec, start_new_session=True)
        self.child = child
        os.close(requests_r)
        os.close(replies_w)
        self.handles: dict[int, Handle] = {}
        self.alive = True
        self.budget: Budget | None = None  # the current check's limits (start_check)

    def start_check(self, cpu_seconds: float, wall_seconds: float) -> None:
        """From now on, until the next check, the child may use `cpu_seconds` (all its processes together)."""
        self.budget = Budget(self.process.pid, cpu_seconds, wall_seconds)

    def wait_for_reply(self) -> None:
        """Until the reply is there, or the check's budget is spent: then the child is stopped, and the check told why."""
        while not select.select([self.replies], [], [], 0.25)[0]:
            if self.budget is None:
                continue
            try:
                self.budget.check()
            except OverBudget as error:
                self.close()
                raise ChildGone(str(error)) from None
            except MachineOverloaded:
                self.close()
                raise

    def ask(self, *request):
        self.send(*request)
        return self.reply()

    def send(self, *request) -> None:
        """Ask without waiting: `reply()` reads the answer (meanwhile the child works, and the judge too)."""
        if not self.alive:
            raise ChildGone("your code's process was stopped earlier in this run (it took too long or crashed)")
        self.alive = False  # until the reply is read: an interrupted exchange leaves the pipe in an unknown state
        try:
            send(self.requests, pickle.dumps(tuple(as_request(x) for x in request)))
        except BrokenPipeError:
            raise ChildGone(f"your code's process ended ({self.exit_reason()})") from None

    def restart_budget(self) -> None:
        """The current check's limits, counted again from now (for a child that waited while another worked)."""
        if self.budget is not None:
            self.start_check(self.budget.cpu_seconds, self.budget.wall_seconds)

    def reply(self):
        """The answer to the request sent last."""
        self.wait_for_reply()
        try:
            payload = receive(self.replies)
        except TooLarge as error:
            raise ChildGone(f"your code's process sent {error}: more than any honest answer") from None
        if payload is None:
            raise ChildGone(f"your code's process ended ({self.exit_reason()})")
        reply = torch.load(io.BytesIO(payload), weights_only=True)  # data only: no code runs here
        self.alive = True
        if not isinstance(reply, dict) or not ({"value", "error"} & set(reply)):
            raise ChildGone("your code's process answered something that is not a reply")
        if "error" in reply:
            kind, message = str(reply["error"][0]), str(reply["error"][1])
            if kind == "NotImplementedError":
                raise NotImplementedError(message)
            if kind == "AttributeError":
                raise AttributeError(message)
            raise StudentCodeError(f"{kind}: {message}")
        return self.from_reply(reply["value"])

    def exit_reason(self) -> str:
        try:
            code = self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            return "still running"
        return f"exit code {code}" if code >= 0 else f"killed by signal {-code}"

    def from_reply(self, value):
        if isinstance(value, dict) and "__handle__" in value:
            hid = int(value["__handle__"])
            if hid not in self.handles:
                self.handles[hid] = Handle(self, hid, str(value["type"]), bool(value["callable"]))
            return self.handles[hid]
        if isinstance(value, dict) and "__ndarray__" in value:
            return value["__ndarray__"].numpy()
        if isinstance(value, dict):
            return {k: self.from_reply(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return (list if isinstance(value, list) else tuple)(self.from_reply(v) for v in value)
        if isinstance(value, torch.Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            raise ChildGone(f"your code returned NaN or infinite numbers (in a tensor of shape {tuple(value.shape)}): "
                            f"{NON_FINITE}: NaN fails every check it reaches, since NaN compares unequal to everything")
        if isinstance(value, (torch.Tensor, bool, int, float, str, type(None))):
            return value
        raise ChildGone(f"your code's process sent a {type(value).__name__}")

    def close(self) -> None:
        """End the child and everything it started."""
        self.alive = False
        for fd in (self.requests, self.replies):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.killpg(self.process.pid, 9)
        except (ProcessLookupError, PermissionError):
            pass
        self.process.wait()
        self.child.cleanup()
        self.log.close()


class Handle:
    """A student's object in the child: attributes, calls, items and iteration are asked there."""

    def __init__(self, remote: Remote, hid: int, type_name: str, is_callable: bool):
        object.__setattr__(self, "_remote", remote)
        object.__setattr__(self, "_id", hid)
        object.__setattr__(self, "remote_type", type_name)  # the class name of the object there
        object.__setattr__(self, "_callable", is_callable)

    def __getattr__(self, name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        return self._remote.ask("getattr", self._id, name)

    def __setattr__(self, name: str, value) -> None:
        self._remote.ask("setattr", self._id, name, value)

    def __call__(self, *args, **kwargs):
        return self._remote.ask("call", self._id, args, kwargs)

    def __getitem__(self, key):
        return self._remote.ask("getitem", self._id, key)

    def __iter__(self):
        return iter(self._remote.ask("list", self._id))

    def __len__(self) -> int:
        return self._remote.ask("len", self._id)

    def __repr__(self) -> str:
        return f"<your {self.remote_type} (in the grading child)>"


def as_request(value):
    """Handles travel as their ids; everything else the judge sends is its own (trusted) data."""
    if isinstance(value, Handle):
        return Ref(value._id)
    if isinstance(value, (list, tuple)):
        return type(value)(as_request(v) for v in value)
    if isinstance(value, dict):
        return {k: as_request(v) for k, v in value.items()}
    return value


# ------------------------------------------------------------------------------------------------- child side
def as_reply(value, objects: dict):
    """What the child sends: data as data (tensors detached, by value), anything else as a handle."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True).contiguous()
    if isinstance(value, (bool, int, float, str, type(None))):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(value))}
    if isinstance(value, torch.Size):
        return tuple(value)
    if isinstance(value, (list, tuple)):  # a namedtuple travels as a plain tuple
        return (list if isinstance(value, list) else tuple)(as_reply(v, objects) for v in value)
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: as_reply(v, objects) for k, v in value.items()}
    objects[id(value)] = value
    return {"__handle__": id(value), "type": type(value).__name__, "callable": callable(value)}


def from_request(value, objects: dict):
    if isinstance(value, Ref):
        return objects[value.id]
    if isinstance(value, (list, tuple)):
        return type(value)(from_request(v, objects) for v in value)
    if isinstance(value, dict):
        return {k: from_request(v, objects) for k, v in value.items()}
    return value


def answer(request: tuple, objects: dict, folder: str):
    from lil_transformy.stages import load_stage_module

    verb, *rest = request
    if verb == "seed":  # before every check, as the judge reseeds its own inputs: the same numbers as in-process
        torch.manual_seed(rest[0])
        return None
    if verb == "import":
        return load_stage_module(rest[0], folder)
    if verb == "trainer":  # the judge trains: the child answers its questions (trainer.py), which it checks
        from lil_transformy.grading.trainer import ANSWERS

        return ANSWERS[rest[0]](folder, *from_request(rest[1:], objects))
    target = objects[rest[0]]
    if verb == "getattr":
        return getattr(target, rest[1])
    if verb == "setattr":
        return setattr(target, rest[1], from_request(rest[2], objects))
    if verb == "call":
        return target(*from_request(rest[1], objects), **from_request(rest[2], objects))
    if verb == "getitem":
        return target[from_request(rest[1], objects)]
    if verb == "list":
        return list(target)
    if verb == "len":
        return len(target)
    raise ValueError(f"unknown request {verb!r}")


def serve(folder: str, requests: int, replies: int) -> None:
    """The child's loop: one request, one reply, until the judge closes the pipe."""
    torch.manual_seed(0)
    objects: dict[int, object] = {}
    evidence = Evidence(folder)  # before any of the student's code runs
    while (payload := receive(requests)) is not None:
        try:
            request = pickle.loads(payload)
            value = evidence.records() if request == ("evidence",) else answer(request, objects, folder)
            reply = {"value": as_reply(value, objects)}
        except BaseException as error:  # the student's code raised (or exited): the judge decides
            reply = {"error": (type(error).__name__, str(error)[:2000])}
        buffer = io.BytesIO()
        torch.save(reply, buffer)
        send(replies, buffer.getvalue())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise LilTransformyError("usage: python -I -m lil_transformy.grading.remote FOLDER REQUESTS_FD REPLIES_FD")
    from lil_transformy.grading import remote  # this module by its own name, not __main__: requests name its classes

    remote.serve(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
