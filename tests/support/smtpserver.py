"""A real SMTP server (aiosmtpd) on 127.0.0.1 for mail tests, with switchable failures.

`SmtpServer.mode` decides how the next message is answered: "accept" keeps it, a
reply string such as "451 4.3.0 Try again later" or "554 5.7.1 Rejected" refuses it
at the end of DATA, "close" drops the connection once the whole message is in, without
a reply (the client cannot know whether it was kept), "drop-early" drops it at RCPT,
before DATA (nothing handed over), "stall" waits `delay` seconds before answering RCPT
(a client timeout before anything was handed over), and "slow" keeps the message and
answers only `delay` seconds later (a client that gives up or dies meanwhile cannot
know the message went through). `on_rcpt`, when set, is called at each RCPT (e.g. to
fill the disk while a digest is in flight).
`closed_port()` gives a port nothing listens on (connection refused).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed_tls(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A server TLS context for "localhost" / 127.0.0.1 and the CA file a client trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


closed_port = free_port  # bound once, then closed: connecting to it is refused


class SmtpServer:
    def __init__(self, *, tls_context: ssl.SSLContext | None = None, implicit_tls: bool = False,
                 credentials: tuple[str, str] | None = None) -> None:
        self.mode = "accept"
        self.delay = 0.0
        self.refuse_rcpt: set[str] = set()  # answered "550 no such user" at RCPT
        self.received: list[Envelope] = []
        self.attempts = 0  # DATA commands seen, accepted or not
        self.rcpts = 0  # RCPT commands seen
        self.on_rcpt: Callable[[], None] | None = None
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if implicit_tls:
            kwargs["ssl_context"] = tls_context
        elif tls_context is not None:
            kwargs.update(tls_context=tls_context, require_starttls=True)
        if credentials is not None:
            user, password = credentials

            def authenticate(server: object, session: Session, envelope: Envelope,
                             mechanism: str, data: object) -> AuthResult:
                ok = (isinstance(data, LoginPassword) and data.login == user.encode()
                      and data.password == password.encode())
                return AuthResult(success=ok, handled=False)  # unhandled: server says 535

            # aiosmtpd only counts STARTTLS as TLS for AUTH; implicit TLS is TLS too
            kwargs.update(authenticator=authenticate, auth_required=True,
                          auth_require_tls=not implicit_tls)
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port,
                                     server_hostname="localhost", **kwargs)

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server: Any, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        self.rcpts += 1
        if self.on_rcpt is not None:
            self.on_rcpt()
        if self.mode == "drop-early":
            server.transport.close()
            return "421 closing"  # never reaches the client
        if self.mode == "stall":
            await asyncio.sleep(self.delay)
        if address in self.refuse_rcpt:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        self.attempts += 1
        if self.mode == "close":
            server.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        if self.mode not in ("accept", "slow"):
            return self.mode
        self.received.append(envelope)
        if self.mode == "slow":
            # committed, but the client hears it late (or never, if it is gone by then)
            await asyncio.sleep(self.delay)
        return "250 2.0.0 Message accepted for delivery"

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def messages(self) -> list[EmailMessage]:
        return [message_from_bytes(e.original_content or b"", policy=default_policy)  # type: ignore[misc]
                for e in self.received]

    def env(self, **extra: str) -> dict[str, str]:
        """DOZOR_SMTP_* variables pointing at this server."""
        return {"DOZOR_SMTP_HOST": "127.0.0.1", "DOZOR_SMTP_PORT": str(self.port), **extra}
