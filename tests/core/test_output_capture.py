"""A task's captured output is complete, however slowly the console reads it, and the end of a
task does not wait for a background process the step left holding its output pipe."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CAPTURING_SCRIPT = textwrap.dedent("""
    import subprocess, sys, time
    LINES = 150_000
    from flow_core.engine.output_capture import OutputCapture

    started = time.monotonic()
    with OutputCapture() as logs:
        subprocess.Popen(["sleep", "60"])  # inherits the pipes and keeps them open
        for i in range(LINES):
            print("line", i)
        print("the last words", file=sys.stderr)
    took = time.monotonic() - started
    lines = logs.stdout.count(b"\\n")
    sys.stderr.write(f"CAPTURED {lines} {logs.stderr.strip().decode()!r} {took:.1f}\\n")
""")


LINES = 150_000
TOTAL_BYTES = sum(len(f"line {i}\n") for i in range(LINES))
#: A console that stalls for 4 s just before the last 100 kB: the step has finished writing by
#: then (pipes hold far less), so only the capture's copying is left to wait for it.
STALLING_CONSOLE = (f"import sys, time; f = sys.stdin.buffer; got = len(f.read({TOTAL_BYTES - 100_000})); "
                    "time.sleep(4); print(got + len(f.read()))")


def test_every_line_is_kept_when_the_console_stalls_and_a_background_process_holds_the_pipe():
    pipeline = subprocess.run(
        ["sh", "-c", f'{sys.executable} -c "$SCRIPT" | {sys.executable} -c "$CONSOLE"'],
        env={**os.environ, "SCRIPT": CAPTURING_SCRIPT, "CONSOLE": STALLING_CONSOLE},
        capture_output=True, text=True, timeout=50,
    )
    report = [line for line in pipeline.stderr.splitlines() if line.startswith("CAPTURED")]
    assert report, pipeline.stderr
    _, lines, rest = report[0].split(" ", 2)
    last_words, took = rest.rsplit(" ", 1)
    assert int(lines) == LINES
    assert last_words == "'the last words'"
    assert int(pipeline.stdout.split()[0]) == TOTAL_BYTES  # the console got every byte too
    assert float(took) < 40  # did not wait out the 60 s background process
