"""Tokens at rest: encrypted, owner-only files, per environment, key in a real keyring only."""

from __future__ import annotations

import stat
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from optima_bi_mcp.errors import IdentityError
from optima_bi_mcp.identity.storage import TokenSet, TokenStore, real_keyring

TOKENS = TokenSet(
    issuer="http://127.0.0.1:9400",
    client_id="optima-bi",
    access_token="access-secret-value",
    refresh_token="refresh-secret-value",
    expires_at=2_000_000_000.0,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_saved_tokens_load_back(tmp_path):
    """What is saved for an environment loads back equal."""
    store = TokenStore(tmp_path / "t", "development", use_keyring=False)
    store.save(TOKENS)
    assert TokenStore(tmp_path / "t", "development", use_keyring=False).load() == TOKENS


def test_token_file_is_encrypted(tmp_path):
    """Neither token appears in the file on disk."""
    store = TokenStore(tmp_path / "t", "development", use_keyring=False)
    store.save(TOKENS)
    raw = store.path.read_bytes()
    assert b"access-secret-value" not in raw and b"refresh-secret-value" not in raw


def test_files_are_owner_only(tmp_path):
    """The directory is 0700, the token file and key file 0600."""
    store = TokenStore(tmp_path / "t", "development", use_keyring=False)
    store.save(TOKENS)
    assert mode(store.token_dir) == 0o700
    assert mode(store.path) == 0o600 and mode(store.token_dir / "token.key") == 0o600


def test_environments_do_not_share_tokens(tmp_path):
    """Tokens saved for production are not stage's."""
    TokenStore(tmp_path, "production", use_keyring=False).save(TOKENS)
    assert TokenStore(tmp_path, "stage", use_keyring=False).load() is None


def test_key_file_readable_by_others_is_refused(tmp_path):
    """A key file others can read is refused, not used."""
    store = TokenStore(tmp_path, "development", use_keyring=False)
    store.save(TOKENS)
    (tmp_path / "token.key").chmod(0o644)
    with pytest.raises(IdentityError, match="readable by others"):
        TokenStore(tmp_path, "development", use_keyring=False).load()


def test_tokens_under_another_key_are_ignored(tmp_path):
    """A file encrypted under a lost key loads as logged out rather than failing."""
    TokenStore(tmp_path, "development", use_keyring=False).save(TOKENS)
    (tmp_path / "token.key").unlink()
    assert TokenStore(tmp_path, "development", use_keyring=False).load() is None


def test_fail_keyring_backend_is_not_a_keyring():
    """keyring's fail backend does not count: the key goes to a file."""
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        assert real_keyring() is None
    finally:
        keyring.set_keyring(previous)


def test_token_set_repr_hides_tokens():
    """A TokenSet in a traceback or a log shows no token."""
    shown = repr(TOKENS) + str(TOKENS)
    assert "secret-value" not in shown
