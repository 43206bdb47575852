"""The harness itself: every parleyd a test started is gone when the test run ends, also when a
setUp fails after starting nodes (tearDown never runs then) or the runner is stopped by SIGTERM
(ctest's timeout)."""
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))

CHILD = textwrap.dedent('''
    import time, unittest
    import harness

    class Child(unittest.TestCase):
        def setUp(self):
            self.node = harness.Node().start()  # no addCleanup, no tearDown: on purpose
            with open(MARK, "w") as f:
                f.write("%d %s" % (self.node.proc.pid, self.node.data))
            if FAIL_SETUP:
                raise RuntimeError("setUp fails after starting a node")

        def test_runs_long(self):
            time.sleep(60)
''')


def alive(pid, data):
    """Whether pid is a live (not zombie) process whose command line names `data`."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmdline = f.read()
        with open("/proc/%d/stat" % pid) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return data.encode() in cmdline and state != "Z"


class LeftoverProcesses(unittest.TestCase):
    def run_child(self, fail_setup, terminate):
        tmp = tempfile.mkdtemp(prefix="parley-harness-")
        mark = os.path.join(tmp, "started")
        with open(os.path.join(tmp, "test_child.py"), "w") as f:
            f.write("MARK = %r\nFAIL_SETUP = %r\n" % (mark, fail_setup) + CHILD)
        env = dict(os.environ, PYTHONPATH=HERE)
        child = subprocess.Popen([sys.executable, "-m", "unittest", "test_child"], cwd=tmp,
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 30
            while not os.path.exists(mark) and child.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.2)  # the mark is complete
            self.assertTrue(os.path.exists(mark), child.stdout.read() if child.poll() else "")
            pid, data = open(mark).read().split(" ", 1)
            pid = int(pid)
            if terminate:
                child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)
            # Killed synchronously before the runner exits; allow a moment for the kernel.
            deadline = time.time() + 5
            while alive(pid, data) and time.time() < deadline:
                time.sleep(0.05)
            left = alive(pid, data)
            if left:
                os.kill(pid, signal.SIGKILL)
            self.assertFalse(left, "parleyd %d outlived the test run that started it" % pid)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()

    def test_failed_setup_leaves_no_parleyd(self):
        self.run_child(fail_setup=True, terminate=False)

    def test_sigterm_to_the_runner_leaves_no_parleyd(self):
        self.run_child(fail_setup=False, terminate=True)


if __name__ == "__main__":
    unittest.main()
