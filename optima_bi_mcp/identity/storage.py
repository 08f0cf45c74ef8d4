"""Tokens at rest: one encrypted file per environment, its key in the keyring.

A session keeps its tokens in memory; this store persists them so the next
session of the same person starts logged in. The file is encrypted with
Fernet (AES-128-CBC + HMAC-SHA256). The key lives in the system keyring when
a real backend exists (never keyring's `fail` or `null` backends); otherwise
in a key file beside the tokens, readable by the owner only (0600, directory
0700). Neither the key nor a token is ever logged.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from loguru import logger
from pydantic import BaseModel, ValidationError

from optima_bi_mcp.errors import IdentityError

log = logger.bind(module=__name__)

KEYRING_SERVICE = "optima-bi"
KEYRING_USERNAME = "token-encryption-key"
_KEY_FILE = "token.key"


class TokenSet(BaseModel):
    """What a token endpoint granted, plus when the access token expires."""

    issuer: str
    client_id: str
    access_token: str
    refresh_token: str | None = None
    token_type: str = "Bearer"
    scope: str | None = None
    expires_at: float | None = None

    def __repr__(self) -> str:
        # A repr reaches tracebacks and debuggers; it must not carry tokens.
        return f"TokenSet(issuer={self.issuer!r}, expires_at={self.expires_at!r})"

    __str__ = __repr__

    @classmethod
    def from_response(cls, issuer: str, client_id: str, body: dict[str, Any]) -> TokenSet:
        """A token endpoint's successful response (RFC 6749 §5.1)."""
        expires_in = body.get("expires_in")
        return cls(
            issuer=issuer,
            client_id=client_id,
            access_token=body["access_token"],
            refresh_token=body.get("refresh_token"),
            token_type=body.get("token_type", "Bearer"),
            scope=body.get("scope"),
            expires_at=time.time() + float(expires_in) if expires_in else None,
        )

    def expires_within(self, seconds: float) -> bool:
        return self.expires_at is not None and self.expires_at - time.time() < seconds


def real_keyring() -> Any | None:
    """The system keyring backend, or None when only a fail/null backend exists."""
    try:
        import keyring
        from keyring.backends import fail, null
    except ImportError:  # pragma: no cover - keyring is a dependency
        return None
    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring | null.Keyring):
        return None
    return backend


class TokenStore:
    """Encrypted token files under `token_dir`, one per environment."""

    def __init__(self, token_dir: Path, environment: str, *, use_keyring: bool = True) -> None:
        self.token_dir = Path(token_dir)
        self.environment = environment
        self._keyring = real_keyring() if use_keyring else None
        self._fernet: Fernet | None = None

    @property
    def path(self) -> Path:
        return self.token_dir / f"{self.environment}.tokens"

    @property
    def key_location(self) -> str:
        """`keyring` or `file`: where the encryption key is kept."""
        return "keyring" if self._keyring is not None else "file"

    def load(self) -> TokenSet | None:
        """The saved tokens of this environment, or None if there are none readable."""
        if not self.path.exists():
            return None
        try:
            plain = self._cipher().decrypt(self.path.read_bytes())
            return TokenSet.model_validate_json(plain)
        except (InvalidToken, ValidationError):
            # A changed key or a damaged file: the person logs in again.
            log.warning("saved tokens unreadable, ignoring environment={}", self.environment)
            return None

    def save(self, tokens: TokenSet) -> None:
        """Encrypt and write `tokens`, replacing the file atomically."""
        self._ensure_dir()
        data = self._cipher().encrypt(tokens.model_dump_json().encode())
        tmp = self.path.with_suffix(".tmp")
        _write_private(tmp, data)
        os.replace(tmp, self.path)
        log.debug("tokens saved environment={} key={}", self.environment, self.key_location)

    def clear(self) -> None:
        """Forget the saved tokens of this environment."""
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _cipher(self) -> Fernet:
        if self._fernet is None:
            self._fernet = Fernet(self._key())
        return self._fernet

    def _key(self) -> bytes:
        if self._keyring is not None:
            return self._keyring_key()
        return self._file_key()

    def _keyring_key(self) -> bytes:
        assert self._keyring is not None
        try:
            stored = self._keyring.get_password(KEYRING_SERVICE, KEYRING_USERNAME)
            if stored:
                return str(stored).encode()
            key = Fernet.generate_key()
            self._keyring.set_password(KEYRING_SERVICE, KEYRING_USERNAME, key.decode())
            return key
        except Exception as exc:  # keyring backends raise their own error types
            raise IdentityError("the system keyring refused the token key") from exc

    def _file_key(self) -> bytes:
        self._ensure_dir()
        path = self.token_dir / _KEY_FILE
        if path.exists():
            _check_private(path)
            return path.read_bytes().strip()
        key = Fernet.generate_key()
        _write_private(path, key)
        return key

    def _ensure_dir(self) -> None:
        self.token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # mkdir's mode is masked by the umask and ignored for existing dirs.
        os.chmod(self.token_dir, 0o700)


def _write_private(path: Path, data: bytes) -> None:
    """Write a file that only its owner can read, with no window where others could."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise IdentityError(
            f"the token key file is readable by others (mode {mode:o}); remove it and log in again",
            path=str(path.name),
        )
