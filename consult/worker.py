"""The worker: runs the tasks that plugins declared, one thread per lane.

Each lane (mail, LINE, alerts, …) loops on its own, so a slow kind of work — an SMTP server that
accepts connections and never answers — never holds up another. Every round of a task runs in
its own app context and owns its transactions. `madoguchi worker --lane line` runs only some
lanes, so a city can give a lane its own process or machine.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from contextlib import ExitStack, nullcontext
from dataclasses import dataclass, field

from flask import Flask, has_app_context

from consult import plugins
from consult.extensions import db

log = logging.getLogger("madoguchi.worker")


def tasks_by_lane(app: Flask, lanes: set[str] | None = None) -> dict[str, list[plugins.WorkerTask]]:
    from consult.config import CoreSettings
    from consult.services import outbox
    from consult.settings import section
    from consult.transfer.roles import runs_task

    grouped: dict[str, list[plugins.WorkerTask]] = defaultdict(list)
    registry = plugins.registry(app)
    role = section(CoreSettings, app).role
    for task in [*registry.worker_tasks, *outbox.worker_tasks(registry)]:
        if not runs_task(role, task.name):
            continue
        if lanes is None or task.lane in lanes:
            grouped[task.lane].append(task)
    return dict(grouped)


FAILED = object()


def _round(task: plugins.WorkerTask):
    try:
        result = task.run()
        db.session.commit()
        return result
    except Exception:
        log.exception("worker task %s failed; trying again", task.name)
        db.session.rollback()
        return FAILED


def run_task(app: Flask, task: plugins.WorkerTask):
    """One round of one task in its own app context: what it returned, or FAILED."""
    with app.app_context():
        try:
            return _round(task)
        finally:
            db.session.remove()


def run_once(app: Flask, lanes: set[str] | None = None) -> dict:
    """Every task once, lane after lane, in the caller's app context (`worker --once`, cron).

    The caller's context, not a new one: on SQLite a second session would wait for the
    caller's write lock.
    """
    with app.app_context() if not has_app_context() else nullcontext():
        return {
            task.name: _round(task)
            for tasks in tasks_by_lane(app, lanes).values()
            for task in tasks
        }


@dataclass
class Worker:
    """The lanes of one process, each a thread; `stop` ends them between rounds."""

    app: Flask
    interval: float = 2.0
    lanes: set[str] | None = None
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)
    beating: ExitStack = field(default_factory=ExitStack)

    def start(self) -> None:
        from consult.services import queue

        # Before the first claim: the claims of this process are kept alive by its heartbeat.
        self.beating.enter_context(queue.heartbeat(self.app))
        for lane, tasks in sorted(tasks_by_lane(self.app, self.lanes).items()):
            thread = threading.Thread(
                target=self._loop, args=(tasks,), name=f"worker-{lane}", daemon=True
            )
            thread.start()
            self.threads.append(thread)

    def _loop(self, tasks: list[plugins.WorkerTask]) -> None:
        pause = min([self.interval, *(task.interval for task in tasks)])
        while not self.stop.is_set():
            for task in tasks:
                if self.stop.is_set():
                    return
                run_task(self.app, task)
            self.stop.wait(pause)

    def join(self, timeout: float | None = None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self.threads:
            left = None if deadline is None else max(deadline - time.monotonic(), 0)
            thread.join(left)
        if not any(thread.is_alive() for thread in self.threads):
            self.beating.close()

    def run_forever(self) -> None:
        self.start()
        try:
            while any(thread.is_alive() for thread in self.threads):
                time.sleep(0.5)
        except KeyboardInterrupt:
            self.stop.set()
            self.join(timeout=30)
