"""``card server``: a run's cards over HTTP on loopback, a running task's card changing as the
step refreshes it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request


LIVE_FLOW = '''
import os
import time
from flow_core import FlowSpec, card, current, step
from flow_core.cards import ProgressBar


def wait_for(name):
    """Hold the step until the test writes the signal file ``name``."""
    path = os.path.join(os.environ["CARD_SIGNALS"], name)
    for _ in range(6000):
        if os.path.exists(path):
            return
        time.sleep(0.05)
    raise RuntimeError(f"the test never wrote {name}")


class Live(FlowSpec):
    @card(type="blank", id="live", refresh_interval=1)
    @step
    def start(self):
        bar = ProgressBar(max=3, label="Epochs")
        current.card.append(bar)
        bar.update(1)
        current.card.refresh()
        wait_for("second")
        bar.update(2)
        current.card.refresh()  # maybe sooner than refresh_interval: stored when it is over
        wait_for("finish")
        bar.update(3)
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    Live()
'''


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


_LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def _fetch(url: str, method: str = "GET") -> tuple[int, str]:
    try:
        with _LOOPBACK.open(urllib.request.Request(url, method=method), timeout=30) as response:
            return response.status, response.read().decode("utf-8")
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode("utf-8")


def _until(condition, what: str):
    """Poll ``condition`` until it returns something true (the run and the server go at their own pace)."""
    for _ in range(1200):
        try:
            found = condition()
        except (ConnectionError, urllib.error.URLError):
            found = None
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"never saw {what}")


def test_card_server_serves_a_runs_cards_and_a_running_tasks_latest_refresh(flow_env, write_flow, tmp_path):
    path = write_flow("live.py", LIVE_FLOW)
    signals = tmp_path / "signals"
    signals.mkdir()
    env = {**os.environ, **flow_env, "CARD_SIGNALS": str(signals)}
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with open(tmp_path / "server.log", "w") as log:
        server = subprocess.Popen([sys.executable, str(path), "card", "server", "--port", str(port)], env=env,
                                  stdout=log, stderr=log)
    run = None
    try:
        status, page = _until(lambda: _fetch(base + "/"), "the server answer")
        assert status == 200 and "Live has no run yet" in page  # it waits for the next run
        run = subprocess.Popen([sys.executable, str(path), "run"], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        listing = _until(lambda: json.loads(_fetch(base + "/cards.json")[1])["cards"], "the running task's card")
        (card,) = listing
        assert card["type"] == "blank" and card["id"] == "live" and card["pathspec"].split("/")[2] == "start"
        url = base + card["url"]
        first = _until(lambda: (lambda html: html if 'value="1"' in html else None)(_fetch(url)[1]), "epoch 1")
        assert 'data-card-status="running"' in first and 'http-equiv="refresh"' in first
        assert card["url"] in _fetch(base + "/")[1]  # the index links it

        (signals / "second").write_text("")
        second = _until(lambda: (lambda html: html if 'value="2"' in html else None)(_fetch(url)[1]), "epoch 2")
        assert 'data-card-status="running"' in second and "2 / 3" in second

        (signals / "finish").write_text("")
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        final = _fetch(url)[1]
        assert 'data-card-status="final"' in final and 'value="3"' in final and "http-equiv" not in final

        assert _fetch(url, method="POST")[0] == 405  # read-only
        assert _fetch(base + "/card/1/start/1/nosuchhash")[0] == 404
        assert "Serving the cards of Live" in (tmp_path / "server.log").read_text()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)
        if run is not None and run.poll() is None:
            run.kill()
            run.wait()
