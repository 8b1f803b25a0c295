"""One run per output folder: real processes holding, refusing and dying with the lock."""

from __future__ import annotations

import os
import signal

import pytest
from support import hold_in_subprocess

from crawler.layout import LOCK_NAME
from crawler.runlock import RunLock, RunLockedError, read_holder


@pytest.mark.e2e
def test_second_run_is_refused_with_the_holders_details(tmp_path):
    proc = hold_in_subprocess(tmp_path)
    try:
        with pytest.raises(RunLockedError) as err:
            RunLock(tmp_path, command="second").acquire()
        message = str(err.value)
        assert f"pid {proc.pid}" in message
        assert "started 20" in message
        assert "autoblog-archive crawl http://farm.test/" in message
        assert err.value.holder["pid"] == proc.pid
    finally:
        proc.terminate()
        proc.wait()


@pytest.mark.e2e
def test_sigkilled_holder_leaves_a_stale_file_that_does_not_block(tmp_path):
    proc = hold_in_subprocess(tmp_path)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (tmp_path / LOCK_NAME).exists()  # the stale file is still there...
    assert read_holder(tmp_path)["pid"] == proc.pid
    with RunLock(tmp_path, command="resume") as lock:  # ...and does not block
        assert lock.is_locked
        assert read_holder(tmp_path)["pid"] == os.getpid()
        assert read_holder(tmp_path)["command"] == "resume"


def test_release_clears_the_holder_and_allows_the_next_run(tmp_path):
    with RunLock(tmp_path):
        with pytest.raises(RunLockedError):
            RunLock(tmp_path).acquire()  # a second lock object in the same process too
    assert read_holder(tmp_path) is None
    with RunLock(tmp_path) as again:
        assert again.is_locked
    again.release()  # releasing twice is harmless


def test_missing_output_folder_is_created(tmp_path):
    target = tmp_path / "new" / "out"
    with RunLock(target):
        assert (target / LOCK_NAME).exists()
