import os

import pytest

from lil_transformy.data import BUNDLED
from lil_transformy.paths import DATA_ENV


@pytest.fixture(scope="session")
def token_data_dir():
    """The corpus the tests read: $LIL_TRANSFORMY_DATA where set, else the slice the course ships."""
    return os.environ.get(DATA_ENV) or str(BUNDLED)


@pytest.fixture(scope="session")
def token_data(token_data_dir):
    from lil_transformy.tokens import load_token_data

    return load_token_data(token_data_dir)


@pytest.fixture(scope="session")
def offline():
    """command -> the command in a network namespace of its own, where this user may make one: loopback only (a
    Jupyter kernel talks to its client over loopback), nothing outside."""
    import shutil
    import subprocess

    unshare, ip = shutil.which("unshare"), shutil.which("ip")
    if unshare and ip and subprocess.run([unshare, "--net", "true"], capture_output=True).returncode == 0:
        return lambda command: [unshare, "--net", "sh", "-c", f'{ip} link set lo up && exec "$@"', "offline", *command]
    return lambda command: command


@pytest.fixture(scope="session")
def postgres_server():
    """A real PostgreSQL server (Debian's package) on a loopback port, in a temp folder; stopped afterwards.

    Yields its URL, without a database. initdb refuses to run as root: as root, the server runs as Debian's
    `postgres` user.
    """
    import glob
    import pwd
    import shutil
    import socket
    import subprocess

    bin_dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)
    initdb = next((f"{d}/initdb" for d in bin_dirs), None) or shutil.which("initdb")
    if initdb is None:
        pytest.skip("the shared-gradebook test needs a PostgreSQL server: apt-get install postgresql (.ci/run does)")
    pg_ctl = os.path.join(os.path.dirname(initdb), "pg_ctl")
    import tempfile
    from pathlib import Path

    folder = Path(tempfile.mkdtemp(prefix="lil-transformy-postgres-"))  # not under pytest's root-only folder
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir()

    def as_server_user():
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)

    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:  # a free loopback port
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    def run(*command):
        done = subprocess.run(command, capture_output=True, text=True, preexec_fn=as_server_user, cwd=folder)
        assert done.returncode == 0, f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}"

    run(initdb, "-D", str(data), "-U", "grader", "--auth=trust", "-E", "UTF8")
    run(pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-w", "start", "-o",
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1")
    try:
        yield f"postgresql://grader@127.0.0.1:{port}"
    finally:
        run(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def postgres(postgres_server, request):
    """The URL of a new, empty database on the test server, one per test."""
    import re

    import psycopg  # SQLAlchemy's driver for postgresql:// URLs

    name = re.sub(r"\W", "_", request.node.name).lower()[:60]
    with psycopg.connect(f"{postgres_server}/postgres", autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    return f"{postgres_server}/{name}"
