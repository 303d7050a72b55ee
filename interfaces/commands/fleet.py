"""Commands that run and steer the worker fleet."""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading

import click
import dramatiq

from interfaces.commands.context import CliState, pass_state
from interfaces.commands.output import console, json_option, print_json
from workflows.broker import QUEUES


@click.command()
@click.option("--processes", "-p", default=2, show_default=True,
              help="Worker processes (RabbitMQ and Redis brokers).")
@click.option("--threads", "-t", default=4, show_default=True,
              help="Threads per process. Threads share one CPU (Python's GIL): for database "
                   "work, run a process per core with 1 thread when the databases are on the "
                   "same host, 2 to 4 across a network; slow SaaS APIs gain from more.")
@click.option("--queues", "-Q", multiple=True, type=click.Choice(QUEUES),
              help="Only consume these queues (repeatable) [default: all]. Run separate "
                   "workers for `saas` so a slow API cannot hold up database work.")
@click.option("--metrics-port", type=click.IntRange(1, 65535), default=None,
              help="Serve Prometheus metrics on this port [default: DSAR_METRICS_PORT].")
@click.option("--test-hook", "test_hooks", multiple=True, metavar="MODULE", hidden=True,
              help="For tests: import MODULE in each worker process once its actors are "
                   "declared (it may set the App's hooks, see workflows.runtime.app_of).")
@pass_state
def worker(state: CliState, processes: int, threads: int, queues: tuple[str, ...],
           metrics_port: int | None, test_hooks: tuple[str, ...]) -> None:
    """Run workers that execute requests until stopped.

    On RabbitMQ or Redis (DSAR_BROKER_URL) this starts Dramatiq worker processes; each also
    relays the outbox and runs the deadline watch. A worker that plans a request runs its
    first task itself, and the worker that finishes its last task completes the request when
    it holds all the request's collected data (else it enqueues the assembly), when they
    consume those queues. SIGTERM lets the tasks in hand
    finish, then stops. On the in-process broker (memory://) the workers are threads of this
    process.

    It refuses to start, with the fix in one line, when there is no signing key or when its
    master key cannot read the state database's data; its processes stop when it dies.
    """
    from workflows.runtime import preflight

    app = state.app
    preflight(app)
    if app.settings.broker_url.startswith("memory://"):
        from dsar import logs
        from workflows.runtime import InProcessFleet

        # What it does (planned, task done, completed, needs attention) goes to standard error
        # as the RabbitMQ and Redis workers' processes say it (workflows.entry).
        logs.configure(app.settings.log_format)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        with InProcessFleet(app, threads=threads, queues=set(queues) or None) as fleet:
            dramatiq.set_broker(fleet.broker)  # this process's, as in a Dramatiq worker
            for module in test_hooks:
                importlib.import_module(module)
            console.print(f"in-process fleet running ({threads} threads); Ctrl-C to stop")
            stop.wait()
        return
    # Dramatiq's command line, with dsar's log format for Dramatiq's own lines too
    argv = [sys.executable, "-m", "workflows.launch", "--log-format", app.settings.log_format,
            "workflows.entry:setup", *test_hooks, "--processes", str(processes),
            "--threads", str(threads)]
    if queues:
        argv += ["--queues", *queues]
    env = dict(os.environ)  # the worker processes build their App from it
    if metrics_port:
        env["DSAR_METRICS_PORT"] = str(metrics_port)
    os.execve(sys.executable, argv, env)


@click.command()
@click.argument("request_id")
@click.option("--replan", is_flag=True,
              help="Plan the request again from the current data map (after the map changed): "
                   "finished tasks whose part of the plan is unchanged are kept, the rest is "
                   "planned and run anew (refused if a finished erasure would have to run "
                   "again: its evidence is the proof). Recorded in the audit trail.")
@json_option
@pass_state
def retry(state: CliState, request_id: str, replan: bool, as_json: bool) -> None:
    """Resume a request that needs attention: failed tasks run again, finished ones are kept.

    If the data map changed since the request was planned, its tasks refuse to run on the new
    map; --replan plans it again from the current one.
    """
    if replan:
        from workflows.retry import replan as replan_request

        done = replan_request(state.app, request_id, state.actor)
        if as_json:
            print_json({"id": request_id, "replanned": True, "kept_tasks": list(done.kept),
                        "planned_tasks": list(done.planned), "datamap_digest": done.digest})
        else:
            console.print(f"{request_id} is back in progress, planned again from the current "
                          f"data map: {len(done.kept)} finished task(s) kept, "
                          f"{len(done.planned)} planned")
        return
    from workflows.retry import refuse_if_the_map_changed
    from workflows.runner import retry as retry_request

    refuse_if_the_map_changed(state.app, request_id)
    restarted = retry_request(state.app, request_id, state.actor)
    if as_json:
        print_json({"id": request_id, "restarted_tasks": restarted})
    else:
        console.print(f"{request_id} is back in progress; {restarted} failed task(s) restarted")


def wait_with_progress(state: CliState, request_id: str, timeout: float = 3600.0) -> str:
    """Wait for a request to settle, showing its tasks as a progress bar; returns its state.

    With the in-process broker the work is done here, by an in-process fleet; otherwise the
    fleet's workers do it and this only watches.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from interfaces.commands.output import err_console
    from workflows.runtime import InProcessFleet, wait_for

    app = state.app
    columns = (TextColumn("{task.description}", markup=False), BarColumn(),
               MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        bar = progress.add_task(f"{request_id}: waiting", total=None)

        def update(request: object, done: int, total: int) -> None:
            progress.update(bar, completed=done, total=total or None,
                            description=f"{request_id}: {request.state}")  # type: ignore[attr-defined]

        if app.settings.broker_url.startswith("memory://"):
            with InProcessFleet(app, watch_interval=5.0):
                request = wait_for(app, request_id, timeout, update)
        else:
            request = wait_for(app, request_id, timeout, update, poll=0.5)
    return request.state
