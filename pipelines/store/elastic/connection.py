"""A client for one cluster: credentials, the retrying transport, and what its errors mean."""

from __future__ import annotations

import base64
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from elasticsearch import (
    ApiError,
    ConnectionError,
    ConnectionTimeout,
    Elasticsearch,
    SSLError,
    TransportError,
)

from index_config.install import api_reason
from pipelines.store.base import StoreError

# statuses that mean "busy or briefly unavailable": retried, then spooled
RETRY_STATUSES = (429, 502, 503, 504)
# what a request to the cluster raises when it fails
ES_ERRORS = (ApiError, TransportError)


@dataclass(frozen=True)
class Credentials:
    """ELASTIC_API_KEY, or ELASTIC_USERNAME (default "elastic") with ELASTIC_PASSWORD;
    ELASTIC_CA_CERTS for a private CA: read by the entry point from its environment."""

    api_key: str | None = None
    username: str | None = None
    password: str | None = None
    ca_certs: str | None = None

    @classmethod
    def from_environ(cls, env: Mapping[str, str]) -> Credentials:
        return cls(
            api_key=env.get("ELASTIC_API_KEY") or None,
            username=env.get("ELASTIC_USERNAME") or None,
            password=env.get("ELASTIC_PASSWORD") or None,
            ca_certs=env.get("ELASTIC_CA_CERTS") or None,
        )

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        if self.api_key:
            options["api_key"] = self.api_key
        elif self.password:
            options["basic_auth"] = (self.username or "elastic", self.password)
        if self.ca_certs:
            options["ca_certs"] = self.ca_certs
        return options

    def http_headers(self) -> dict[str, str]:
        """The same credentials as an Authorization header (for Kibana's HTTP API)."""
        if self.api_key:
            return {"Authorization": f"ApiKey {self.api_key}"}
        if self.password:
            token = f"{self.username or 'elastic'}:{self.password}".encode()
            return {"Authorization": "Basic " + base64.b64encode(token).decode()}
        return {}


def safe_url(url: str) -> str:
    """The URL without any user:password in it, for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def connect(
    url: str | None,
    *,
    credentials: Credentials | None = None,
    request_timeout: float = 30.0,
    max_retries: int = 3,
    backoff_base: float = 0.5,
    backoff_cap: float = 10.0,
) -> Elasticsearch:
    """A client for `url` with `credentials`; requests are retried on 429/5xx and
    connection errors with backoff."""
    if not url:
        raise StoreError("no Elasticsearch URL: give --es URL or set ELASTICSEARCH_URL")
    # the client logs every retried request with a traceback; Dozor reports failures
    # itself, in one line (unless logging was configured for the client explicitly)
    transport_log = logging.getLogger("elastic_transport")
    if transport_log.level == logging.NOTSET:
        transport_log.setLevel(logging.ERROR)
    try:
        return Elasticsearch(
            url,
            request_timeout=request_timeout,
            max_retries=max_retries,
            retry_on_status=RETRY_STATUSES,
            retry_on_timeout=True,
            retry_backoff_base=backoff_base,
            retry_backoff_cap=backoff_cap,
            **(credentials or Credentials()).client_options(),
        )
    except ValueError as exc:
        raise StoreError(f"bad Elasticsearch URL {safe_url(url)!r}: {exc}") from None


def unreachable(exc: BaseException) -> bool:
    """Down, unreachable or overloaded: worth spooling and retrying later. A TLS error
    is a configuration problem, reported instead."""
    if isinstance(exc, SSLError):
        return False
    if isinstance(exc, ConnectionError | ConnectionTimeout):
        return True
    return isinstance(exc, ApiError) and exc.status_code in RETRY_STATUSES


def describe(exc: BaseException) -> str:
    if isinstance(exc, ApiError):
        return api_reason(exc)
    # the transport nests the socket error a few times over: name the innermost one
    errno = [found for text in (str(getattr(exc, "message", "")), str(exc))
             for found in re.findall(r"\[Errno -?\d+\] ([^)\]'\"]+)", text)]
    return f"{type(exc).__name__}: {errno[-1] if errno else exc}"



def item_error(info: dict[str, Any]) -> str:
    error = info.get("error") or {}
    if isinstance(error, dict):
        return f"{info.get('status')} {error.get('type')}: {error.get('reason')}"
    return f"{info.get('status')} {error}"

