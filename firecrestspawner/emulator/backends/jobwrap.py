"""Run one job script of the ``local`` backend and record how it ended.

``python -I -S jobwrap.py STATUS_FILE SCRIPT`` forks the script (same process
group, default signal handling), waits for it, writes ``exit N`` or ``signal
N`` to STATUS_FILE (temporary file, then rename), then ends the same way, so
the emulator that started it sees the script's own status. An emulator
restarted from its state file cannot wait for a process it did not start: it
watches the process and reads this file instead.

Signals sent to the job's process group (cancel, time limit) are meant for
the script; the wrapper keeps waiting for it. Standard library only, no
package import: it runs with ``-I -S``.
"""

from __future__ import annotations

import os
import signal
import sys

#: Signals the wrapper outlives (caught, so that exec resets them in the script).
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def _ignore(signum: int, frame: object) -> None:
    return


def _record(status_file: str, text: str) -> None:
    tmp = f"{status_file}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    os.replace(tmp, status_file)


def main(argv: list[str]) -> int:
    status_file, script = argv[1], argv[2]
    for forwarded in FORWARDED:
        signal.signal(forwarded, _ignore)
    pid = os.fork()
    if pid == 0:
        try:
            os.execv(script, [script])  # noqa: S606 - the job script, as sbatch runs it
        except OSError as e:
            os.write(2, f"{script}: {e.strerror}\n".encode())
        os._exit(127)
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        _record(status_file, f"signal {sig}")
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        if sig not in (signal.SIGKILL, signal.SIGSTOP):
            signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
        return 128 + sig
    code = os.WEXITSTATUS(status)
    _record(status_file, f"exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
