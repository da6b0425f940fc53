"""The fixture and the plugin speak the AstrBot version a client targets: the marker's
`compat="4.27"`, the ini option `astrlite_compat`, and serve(compat=...)."""

from __future__ import annotations

import httpx
import pytest

from astrlite.testing import AstrliteServer, serve


@pytest.mark.astrlite(compat="4.27", rules=[{"match": "hi", "reply": "Hello!"}])
def test_marker_selects_the_4_27_wire(client: httpx.Client) -> None:
    response = client.post("/api/v1/chat", json={"username": "alice", "message": "hi"})
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    kinds = [
        line.split('"type": "')[1].split('"')[0] for line in response.text.split("\n\n") if line
    ]
    assert kinds[:3] == ["session_id", "user_message_saved", "run_started"]
    missing = client.get("/api/v1/chat/sessions")
    assert missing.content == b'{"status":"error","message":"Missing key: username"}'


def test_the_default_is_the_seed(astrlite_server: AstrliteServer, client: httpx.Client) -> None:
    missing = client.get("/api/v1/chat/sessions")
    assert missing.content == b'{"status":"error","message":"Missing key: username","data":null}\n'


def test_an_unknown_version_is_refused_with_what_is_accepted() -> None:
    with pytest.raises(ValueError, match=r"expected one of 4\.22, 4\.27"), serve(compat="4.26"):
        pass


def test_ini_option_selects_the_profile(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nastrlite_compat = 4.27\n")
    pytester.makepyfile(
        """
        import httpx

        def test_ini(astrlite_server):
            url = astrlite_server.base_url + "/api/v1/chat/sessions/new"
            response = httpx.get(url, headers={"X-API-Key": astrlite_server.api_key})
            head = b'{"status":"ok","message":null,"data":{"session_id":'
            assert response.content.startswith(head)
            assert not response.content.endswith(b"\\n")
        """
    )
    pytester.runpytest_inprocess("-p", "no:cacheprovider").assert_outcomes(passed=1)
