"""Claims on cache keys, so that runs sharing one teacher cache never buy a response twice.

``dvc queue start -j 2`` runs experiments side by side, and they share the repository's cache
(:func:`cotdistill.layout.teacher_cache`). Before a run asks the model for a missing key it
claims a lease on it in the cache's own SQLite file (one write transaction, so two runs cannot
both win). A run that finds a key leased by another waits for that run's answer. A lease
lapses when its owner stops renewing it (``ttl_s``), or at once when its owner was a process
on this machine that no longer exists (killed, crashed), so nobody waits for the dead. "This
machine" is the hostname with the boot and the pid namespace (:func:`process_host`): containers
that share a hostname and a cache volume leave each other's leases to the renewal time.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field

from cotdistill.atomic import process_alive, process_host
from cotdistill.teachers.cache import ResponseCache

TTL_S = 120.0  # a lease not renewed for this long is free to take over
RENEW_S = 20.0  # how often a live run renews its leases
POLL_S = 0.25  # how often a waiting run looks for the other run's answers


@dataclass
class Owner:
    """This run, as the owner of leases: a unique name, its host and its process id."""

    name: str = field(default_factory=lambda: uuid.uuid4().hex)
    host: str = field(default_factory=process_host)  # hostname, boot and pid namespace
    pid: int = field(default_factory=os.getpid)

    def is_dead(self, host: str, pid: int) -> bool:
        """Whether a lease of (host, pid) belongs to a process known to be gone."""
        return host == self.host and pid != self.pid and not process_alive(pid)


class Claims:
    """This run's leases on one cache: claim keys, keep the claims alive, release them."""

    def __init__(self, cache: ResponseCache, owner: Owner | None = None,
                 ttl_s: float = TTL_S) -> None:
        self.cache = cache
        self.owner = owner or Owner()
        self.ttl_s = ttl_s

    def claim(self, keys: list[str]) -> tuple[list[str], list[str], dict[str, tuple[str, int]]]:
        """(claimed by this run, answered already, held by another live run: {key: (host, pid)})."""
        return self.cache.claim(keys, self.owner.name, self.owner.host, self.owner.pid,
                                self.ttl_s, taken_over=self.owner.is_dead)

    @contextlib.contextmanager
    def kept(self, renew_s: float = RENEW_S) -> Iterator[Claims]:
        """Renew this run's leases in the background while the block runs (a model call can
        take longer than ``ttl_s``); release whatever is left when it ends, however it ends."""
        stop = threading.Event()
        path = self.cache.path

        def renew() -> None:
            own = ResponseCache(path)  # SQLite connections stay in the thread that made them
            try:
                while not stop.wait(renew_s):
                    own.renew(self.owner.name, self.ttl_s)
            finally:
                own.close()

        thread = threading.Thread(target=renew, name="teacher-cache-leases", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            stop.set()
            thread.join()
            self.cache.release(self.owner.name)
