"""The Prometheus exporter-toolkit ``--web.config.file``: TLS and basic auth for ``/metrics``.

Supported keys: ``tls_server_config`` (``cert_file``, ``key_file``, ``client_ca_file``,
``client_auth_type``, ``min_version``) and ``basic_auth_users`` (user: bcrypt hash).
``http_server_config`` is accepted and ignored. Anything else stops start-up with the key named.
"""

from __future__ import annotations

import hashlib
import ssl
import threading
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["WebConfig", "TlsServerConfig", "WebConfigError", "load_web_config", "BasicAuth"]


class WebConfigError(ValueError):
    """The web config file is unusable; the message names the file, the key and the fix."""


class TlsServerConfig(BaseModel):
    """``tls_server_config``."""

    model_config = ConfigDict(extra="forbid")
    cert_file: str
    key_file: str
    client_ca_file: str | None = None
    client_auth_type: Literal["NoClientCert", "RequestClientCert", "RequireAnyClientCert",
                              "VerifyClientCertIfGiven", "RequireAndVerifyClientCert"] = "NoClientCert"
    min_version: Literal["TLS10", "TLS11", "TLS12", "TLS13"] = "TLS12"


class WebConfig(BaseModel):
    """The whole file."""

    model_config = ConfigDict(extra="forbid")
    tls_server_config: TlsServerConfig | None = None
    basic_auth_users: dict[str, str] | None = None
    http_server_config: dict[str, object] | None = None

    def ssl_context(self, base: Path) -> ssl.SSLContext | None:
        """A server SSL context, or None without ``tls_server_config``; paths are relative to ``base``."""
        tls = self.tls_server_config
        if tls is None:
            return None
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = {"TLS10": ssl.TLSVersion.TLSv1, "TLS11": ssl.TLSVersion.TLSv1_1,
                               "TLS12": ssl.TLSVersion.TLSv1_2, "TLS13": ssl.TLSVersion.TLSv1_3}[tls.min_version]
        ctx.load_cert_chain(str(base / tls.cert_file), str(base / tls.key_file))
        if tls.client_ca_file:
            ctx.load_verify_locations(str(base / tls.client_ca_file))
        ctx.verify_mode = {"NoClientCert": ssl.CERT_NONE, "RequestClientCert": ssl.CERT_OPTIONAL,
                           "RequireAnyClientCert": ssl.CERT_REQUIRED, "VerifyClientCertIfGiven": ssl.CERT_OPTIONAL,
                           "RequireAndVerifyClientCert": ssl.CERT_REQUIRED}[tls.client_auth_type]
        return ctx


def load_web_config(path: Path) -> tuple[WebConfig, ssl.SSLContext | None]:
    """Read and check ``path``; raise :class:`WebConfigError` naming the key at fault."""
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise WebConfigError(f"{path}: cannot read the web config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise WebConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(raw, dict):
        raise WebConfigError(f"{path}: expected a mapping with tls_server_config and/or basic_auth_users")
    try:
        cfg = WebConfig.model_validate(raw)
    except ValidationError as exc:
        err = exc.errors()[0]
        key = ".".join(str(p) for p in err["loc"])
        raise WebConfigError(f"{path}: key {key!r}: {err['msg']} ") from None
    for user, hashed in (cfg.basic_auth_users or {}).items():
        if not hashed.startswith(("$2a$", "$2b$", "$2y$")):
            raise WebConfigError(f"{path}: key 'basic_auth_users.{user}': not a bcrypt hash "
                                 "(make one with: htpasswd -nBC 10 '' | tr -d ':')")
    try:
        ctx = cfg.ssl_context(path.parent)
    except (OSError, ssl.SSLError) as exc:
        raise WebConfigError(f"{path}: key 'tls_server_config': cannot load the certificate or key ({exc})") from None
    return cfg, ctx


class BasicAuth:
    """Checks ``Authorization: Basic`` against bcrypt hashes, caching successful checks (bcrypt is slow)."""

    def __init__(self, users: dict[str, str]) -> None:
        self.users = {u: h.encode() for u, h in users.items()}
        self._ok: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def check(self, user: str, password: str) -> bool:
        import bcrypt

        hashed = self.users.get(user)
        if hashed is None:
            return False
        key = (user, hashlib.sha256(password.encode()).hexdigest())
        with self._lock:
            if key in self._ok:
                return True
        ok = bcrypt.checkpw(password.encode(), hashed)
        if ok:
            with self._lock:
                if len(self._ok) > 1024:
                    self._ok.clear()
                self._ok.add(key)
        return ok
