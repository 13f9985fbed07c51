"""Racing database work from several threads at once (the concurrency tests run on PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Callable

from django.db import connection


def all_at_once(count: int, work: Callable[[int], None]) -> list[BaseException]:
    """Run work(0) … work(count - 1) in threads released together; what they raised. Each
    thread closes its own database connection when done."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def thread_main(thread: int) -> None:
        try:
            barrier.wait()
            work(thread)
        except BaseException as error:  # reported to the test thread
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=thread_main, args=(thread,)) for thread in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
