"""Session-wide fixtures: the real components every integration test runs against.

`devenv` brings up (or reuses) the dev environment from hack/devenv.py: etcd + kube-apiserver and a private
dockerd. A bare `pytest` therefore works on a fresh machine that has the system packages (`make system-deps`).
If a component cannot start, the test fails with the reason and the fix; it is never skipped.

At the end of the session the API server must hold nothing the session created, and the objects that were there
before it (a running demo's) must read as they did: the `devenv` fixture checks both and fails the run otherwise.

Several pytest sessions may share one environment (people running tests while CI-like runs are going). Each
session registers itself under .dev/users/; the session that started the environment stops it at the end only
when no other live session uses it, and never when it was already running (someone ran `make dev-up`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiodocker
import hypothesis
import pytest
from dockyard_e2e import inventory, leftovers

ROOT = Path(__file__).resolve().parent.parent
# hack/ is a directory of scripts, not a package; devenv.py is written to be importable from it.
sys.path.insert(0, str(ROOT / "hack"))
import devenv as devenv_module  # noqa: E402

# Hypothesis' default 200 ms deadline per example measures the machine, not the code: on a loaded 2-core box a
# pure function can take longer now and then. Sizes stay bounded by max_examples; a per-test timeout still applies.
hypothesis.settings.register_profile("dockyard", deadline=None)
hypothesis.settings.load_profile("dockyard")


def _live_users(users: Path) -> list[int]:
    alive = []
    for entry in users.glob("*"):
        try:
            pid = int(entry.name)
        except ValueError:
            continue
        if devenv_module._pid_alive(pid):
            alive.append(pid)
        else:
            entry.unlink(missing_ok=True)
    return alive


@pytest.fixture(scope="session")
def devenv() -> Iterator[devenv_module.Env]:
    """The running dev environment (started on demand; see the module docstring)."""
    was_running = devenv_module.current() is not None
    try:
        env = devenv_module.up(build=True)
    except devenv_module.DevEnvError as exc:
        pytest.fail(f"the dev environment could not start: {exc}", pytrace=False)
    users = env.dev / "users"
    users.mkdir(exist_ok=True)
    me = users / str(os.getpid())
    me.touch()
    before: dict[str, object] | None = None
    problems: list[str] = []
    try:
        before = inventory(env)
        yield env
    finally:
        try:
            # Every other session fixture (operators, namespaces, hosts) has cleaned up by now: what is left is
            # a bug. (If even the first inventory failed, there is nothing to compare with.)
            if before is not None:
                problems = leftovers(env, before)
        finally:
            me.unlink(missing_ok=True)
            keep = os.environ.get("DOCKYARD_KEEP_DEV") == "1"
            if not was_running and not keep and not _live_users(users):
                devenv_module.down(env.dev)
    if problems:
        pytest.fail("the test session left the API server changed:\n  " + "\n  ".join(problems), pytrace=False)


@pytest.fixture
async def docker(devenv: devenv_module.Env) -> AsyncIterator[aiodocker.Docker]:
    """aiodocker on the private dockerd (for checking, and for acting behind the operator's back)."""
    client = aiodocker.Docker(url=devenv.docker_host, api_version="v1.41")
    try:
        yield client
    finally:
        await client.close()
