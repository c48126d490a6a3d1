"""The test server (serving.devserver.LocalServer) survives losing its port to another process.

``free_port()`` closes its probe socket before ``bentoml serve`` binds, so a second pytest
worker can take the port in between; the server must then start on a fresh port rather than
fail the test that asked for it.
"""

from __future__ import annotations

import socket

import httpx

from serving.devserver import LocalServer


def test_server_moves_to_a_fresh_port_when_its_port_is_taken(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        srv = LocalServer(env={"DEALERML_HOME": str(tmp_path), "DEALERML_SERVE_MODELS": "dealers"},
                          wait_ready=False, log_path=tmp_path / "server.log")
        srv.port, srv.url = taken, f"http://127.0.0.1:{taken}"  # as if another process won the race
        with srv:
            assert srv.port != taken
            assert httpx.get(srv.url + "/livez", timeout=5).status_code == 200
        assert srv.proc.poll() is not None  # stopped on exit
