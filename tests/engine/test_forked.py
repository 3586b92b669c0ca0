"""A build's share processes: results in order, failures reported, and no process outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from search_service.engine.forked import ShareFailed, run_shares


def test_results_come_back_in_share_order_with_progress():
    seen: list[int] = []

    def work(number, share, count):
        count(len(share))
        return [x * 10 for x in share]

    assert run_shares(work, [[1, 2], [3], [4, 5, 6]], seen.append) == [[10, 20], [30], [40, 50, 60]]
    assert seen[-1] == 6


def test_a_failing_share_fails_the_run_with_its_error():
    def work(number, share, count):
        if number == 1:
            raise ValueError("bad share")
        return number

    with pytest.raises(ShareFailed, match="ValueError: bad share"):
        run_shares(work, [[0], [1]])


def test_share_processes_die_with_their_parent_even_when_busy(tmp_path):
    """The processes do not count progress for a while (a long commit, a huge
    file): they must still die with a killed parent, not hold its lock."""
    code = (
        "import os, sys, time\n"
        "from search_service.engine.forked import run_shares\n"
        "def work(number, share, count):\n"
        "    open(os.path.join(sys.argv[1], str(number)), 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "run_shares(work, [0, 1])\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(list(tmp_path.iterdir())) < 2:
        time.sleep(0.05)
    time.sleep(0.2)  # both pid files complete
    pids = [int(p.read_text()) for p in tmp_path.iterdir()]
    assert len(pids) == 2
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    _gone, alive = psutil.wait_procs([psutil.Process(pid) for pid in pids if psutil.pid_exists(pid)], timeout=3)
    for p in alive:
        os.kill(p.pid, signal.SIGKILL)
    assert alive == []
