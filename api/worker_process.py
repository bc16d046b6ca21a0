"""One worker of `aigc-market serve --workers N`: `python -m api.worker_process HOST PORT SUPERVISOR [--access-log]`.

Serves the app of `api.workers.worker_app` with uvicorn on a socket of its own bound to HOST:PORT
with SO_REUSEPORT, beside its siblings' (`api.workers.port_socket`), started by the supervisor
(`api.workers.WorkerPool`); its settings come from the environment the supervisor set. Exits with
uvicorn's code 3 when the app fails to start, so that the supervisor stops instead of starting it
again and again. On Linux a worker gets SIGTERM when its supervisor (pid SUPERVISOR) dies, even by
SIGKILL, so that no orphan keeps serving the port.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

import uvicorn

from api.workers import STARTUP_FAILURE, WORKER_APP, port_socket

#: prctl(2) option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with(supervisor: int) -> None:
    """SIGTERM this process when its parent dies (Linux); exit now if the supervisor is already gone."""
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != supervisor:
        sys.exit(0)


def main(argv: list[str]) -> int:
    die_with(int(argv[2]))
    sock = port_socket(argv[0], int(argv[1]), listening=True)
    # uvicorn's own proxy headers stay off: the app reads X-Forwarded-For itself, from trusted proxies only.
    config = uvicorn.Config(WORKER_APP, factory=True, log_level="info", access_log="--access-log" in argv, proxy_headers=False)
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except SystemExit:  # uvicorn exits when the app cannot be built
        if server.started:
            raise
    return 0 if server.started else STARTUP_FAILURE


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
