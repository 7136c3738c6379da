"""Issue 11: the API key is masked before any truncation, wherever a server's text is shown."""

from __future__ import annotations

import pytest

from audiothinker.judge.openai_backend import OpenAITransport, mask_secret

SECRET = "sk-live-0123456789abcdefXYZ"


def _fragments(secret: str, n: int = 4) -> list[str]:
    return [secret[i : i + n] for i in range(len(secret) - n + 1)]


def test_mask_secret_masks_the_key_and_any_bearer_token():
    assert mask_secret(f"you sent Bearer {SECRET}.", SECRET) == "you sent Bearer ***."
    assert mask_secret(f"key={SECRET}", SECRET) == "key=***"
    assert mask_secret('{"auth": "Bearer other-token"}', SECRET) == '{"auth": "Bearer ***"}'
    assert mask_secret("nothing here", None) == "nothing here"


class _EchoingError(Exception):
    def __init__(self, body: str):
        super().__init__("Error code: 401")
        self.body = body


@pytest.mark.parametrize("pad", [0, 250, 280, 290, 299, 470, 490])
def test_a_key_straddling_the_cut_is_never_partly_shown(pad, monkeypatch):
    monkeypatch.setenv("SECRET_TEST_KEY", SECRET)
    t = OpenAITransport("http://127.0.0.1:9/v1", "m", api_key_env="SECRET_TEST_KEY")
    t._fail(_EchoingError("x" * pad + f"key {SECRET} and more text after it " * 3), 0, False)
    shown = t.last_error()
    assert len(shown) <= 500
    assert not any(f in shown for f in _fragments(SECRET)), shown


@pytest.mark.server
def test_judge_check_never_prints_the_key(fault_proxy, tiny_judge_dir, monkeypatch, capsys):
    from audiothinker.cli import main

    monkeypatch.setenv("SECRET_TEST_KEY", SECRET)
    for pad in (0, 270, 285):
        proxy = fault_proxy(status=401, echo_auth=True, echo_pad=pad)
        rc = main(["judge", "check", "--base-url", proxy.url, "--model", str(tiny_judge_dir),
                   "--api-key-env", "SECRET_TEST_KEY", "--timeout", "10"])
        out = capsys.readouterr()
        assert rc == 1 and "error:" in out.err
        assert proxy.auth_headers == {f"Bearer {SECRET}"}  # it was sent ...
        text = out.out + out.err
        assert not any(f in text for f in _fragments(SECRET)), text  # ... and never shown, not even in part


def test_credentials_in_the_url_are_masked():
    assert mask_secret("http://me:hunter2@judge:8000/v1 failed", None) == "http://***@judge:8000/v1 failed"
    t = OpenAITransport("https://me:hunter2@judge.example/v1", "m")
    assert "hunter2" not in t.describe() and "judge.example" in t.describe()
