"""SIGTERM stops a priorcache command the way Ctrl-C does.

`kill`, `ray job stop` and Kubernetes stop a process with SIGTERM. Python's default is to die
on the spot, and `ray.init` installs a handler that raises `SystemExit`. Either way, the code
written for an interrupt (`KeyboardInterrupt`) does not run: a fine-tune's adapter checkpoint,
an MLflow run ended KILLED rather than FAILED, the summary of an experiment marked
"interrupted". The CLI makes SIGTERM raise `KeyboardInterrupt` at start, and `init_ray` again
after `ray.init` has replaced the handler.

The interrupt is raised wherever the main thread is, and a C extension running Python code
at that moment may turn it into its own error: seen here, a SIGTERM during `make_env` came out
of torch as "ValueError: could not determine the shape of object type ...". So the handler
also records that SIGTERM arrived, and `was_interrupted` counts any error after it as the
interrupt.

Python runs a signal handler only when the main thread is between bytecodes. Seen here: a
SIGTERM sent to `priorcache eval` in the middle of an RLlib PPO iteration (the main thread
waiting inside Ray) was not handled within 30-90 s; the handler runs once that call returns.
An experiment interrupted while an env runner samples kills the runner rather than wait for
its sample (`experiment._kill_env_runners`).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Any


_sigterm_received = threading.Event()


def interrupt_on_sigterm() -> Any:
    """From now on SIGTERM raises `KeyboardInterrupt` in the main thread. Returns the handler
    it replaced, to restore; None (and nothing changed) off the main thread, where Python
    allows no signal handler."""
    if threading.current_thread() is not threading.main_thread():
        return None
    return signal.signal(signal.SIGTERM, _raise_interrupt)


def was_interrupted(error: BaseException) -> bool:
    """Whether `error` ended the command because of Ctrl-C or SIGTERM: a `KeyboardInterrupt`,
    or any error raised after SIGTERM arrived (the interrupt, converted by the code it hit)."""
    return isinstance(error, KeyboardInterrupt) or _sigterm_received.is_set()


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    _sigterm_received.set()
    raise KeyboardInterrupt(signal.Signals(signum).name)
