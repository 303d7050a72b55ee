"""A RabbitMQ node of a test's own: its own port, folder, cookie and node name.

Tests that stop or restart a broker use this instead of the machine's RabbitMQ, which other
tests and other people on the host are using. :func:`private_rabbit` starts ``rabbitmq-server``
as a subprocess with everything in a temporary folder (database, logs, config, enabled plugins,
Erlang cookie), on free ports, and stops it with ``rabbitmqctl -n NODE stop`` at the end.

The node shares only the host's ``epmd`` (the Erlang port mapper, which any node starts when
none is running) with the machine's RabbitMQ; a new node name registers beside the others.
"""

from __future__ import annotations

import os
import random
import secrets
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

LIBEXEC = Path("/usr/lib/rabbitmq/bin")  # Debian/Ubuntu: the real scripts behind /usr/sbin's


def _tool(name: str) -> str:
    """The RabbitMQ script itself: Debian's /usr/sbin wrappers switch to the rabbitmq user and
    its home folder, which would use the machine's cookie and folders instead of ours."""
    if (LIBEXEC / name).exists():
        return str(LIBEXEC / name)
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"{name} is not installed; install rabbitmq-server "
                           "(sudo apt-get install -y rabbitmq-server)")
    return found


def free_port() -> int:
    """A free port below the kernel's ephemeral range. The node is stopped and started again
    on the same port; a port from the ephemeral range (what ``bind(0)`` gives) can meanwhile
    become the local end of some outgoing connection, and the listener then fails with
    ``eaddrinuse``."""
    low = 32768
    with suppress(OSError, ValueError):
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    candidates = range(10_000, max(low, 10_001))
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between 10000 and {low} for a private RabbitMQ node")


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class PrivateRabbit:
    """A running private node: ``url`` is an amqp:// URL for guest on its default vhost."""

    node: str
    port: int
    folder: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """``rabbitmqctl -n NODE ARGS`` against this node only."""
        done = subprocess.run([_tool("rabbitmqctl"), "-n", self.node, *args], env=self.env,
                              capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def stop_app(self) -> None:
        """Stop the broker inside the node (connections drop, the port closes)."""
        self.ctl("stop_app")
        _wait(lambda: not _port_open(self.port), 30, "the private RabbitMQ to close its port")

    def start_app(self) -> None:
        self.ctl("start_app")
        _wait(lambda: _port_open(self.port), 60, "the private RabbitMQ to listen again")

    def log(self) -> str:
        logs = sorted((self.folder / "log").glob("*.log"))
        return "\n".join(p.read_text(errors="replace")[-2000:] for p in logs)


def _wait(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@contextmanager
def private_rabbit(tmp: Path) -> Iterator[PrivateRabbit]:
    """Start a private RabbitMQ node under ``tmp`` and yield it once it accepts connections;
    stop it (and wait for its process) on the way out, whatever happened in between."""
    folder = tmp / "rabbitmq"
    (folder / "log").mkdir(parents=True)
    (folder / "mnesia").mkdir()
    port, dist_port = free_port(), free_port()
    node = f"dsar_test_{uuid.uuid4().hex[:8]}@localhost"
    cookie = folder / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(16))
    cookie.chmod(0o400)
    (folder / "rabbitmq.conf").write_text(
        f"listeners.tcp.default = 127.0.0.1:{port}\n"
        "loopback_users.guest = true\n"
        "log.console = false\n"
        "log.file.level = warning\n")
    (folder / "enabled_plugins").write_text("[].\n")
    env = {
        **os.environ,
        "HOME": str(folder),  # the Erlang cookie is read from $HOME
        "RABBITMQ_NODENAME": node,
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_CONFIG_FILE": str(folder / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_PID_FILE": str(folder / "rabbitmq.pid"),
        "RABBITMQ_USE_LONGNAME": "false",
    }
    env.pop("RABBITMQ_ADVANCED_CONFIG_FILE", None)
    with open(folder / "server.out", "wb") as out:
        process = subprocess.Popen([_tool("rabbitmq-server")], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, cwd=folder,
                                   start_new_session=True)
    rabbit = PrivateRabbit(node, port, folder, env, process)
    try:
        deadline = time.monotonic() + 90
        while not _port_open(port):
            if process.poll() is not None:
                raise RuntimeError("the private RabbitMQ exited at start:\n"
                                   + (folder / "server.out").read_text(errors="replace")[-3000:])
            if time.monotonic() > deadline:
                raise RuntimeError("the private RabbitMQ did not listen within 90 s")
            time.sleep(0.2)
        yield rabbit
    finally:
        with suppress(Exception):
            rabbit.ctl("stop", timeout=60)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, 9)
            process.wait(timeout=10)
