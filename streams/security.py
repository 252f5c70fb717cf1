"""Kafka client security (TLS, SASL/SCRAM): the one place it becomes client arguments.

:class:`KafkaSecurity` is built from :class:`~tickcast.streams.settings.Settings` (which reads
and validates the ``TICKCAST_KAFKA_SECURITY_PROTOCOL``, ``..._SASL_*`` and ``..._SSL_*``
variables) and handed to every Kafka client tickcast makes: :meth:`KafkaSecurity.client_kwargs`
for kafka-python and aiokafka (they share the argument names), and
:meth:`KafkaSecurity.faust_credentials` for the Faust app.

The password is a :class:`Secret` (prints as ``********``) until the moment a client gets it,
and even then a :class:`_MaskedStr`, so a library that logs its configuration dictionary
(kafka-python's admin client does, at DEBUG) shows ``'********'``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from tickcast.errors import TickcastError

__all__ = ["MECHANISMS", "NO_SECRET", "PROTOCOLS", "KafkaSecurity", "Protocol", "Secret",
           "SecurityError"]

Protocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS: Final = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
MASK: Final = "********"


class SecurityError(TickcastError):
    """TLS material (a CA, a client certificate or key) that cannot be loaded."""


@dataclass(frozen=True, slots=True)
class Secret:
    """A string that never shows itself in ``str``, ``repr`` or f-strings; ``reveal()`` does."""

    _value: str = field(default="", repr=False)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __str__(self) -> str:
        return MASK if self._value else ""

    def __repr__(self) -> str:
        return f"Secret({MASK!r})" if self._value else "Secret('')"


NO_SECRET: Final = Secret()


class _MaskedStr(str):
    """The password as client libraries need it (a ``str``), with a masked ``repr``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return repr(MASK)


@dataclass(frozen=True, slots=True, kw_only=True)
class KafkaSecurity:
    """How tickcast's Kafka clients authenticate and encrypt.

    ``protocol`` is Kafka's ``security.protocol``; the SASL fields apply to ``SASL_*``, the
    ``ssl_*`` files (PEM) to ``SSL``/``SASL_SSL``. Without ``ssl_cafile`` the system's trusted
    CAs verify the broker; the broker's host name is always checked against its certificate.
    ``ssl_certfile`` (and ``ssl_keyfile`` unless the key is in the same file) authenticate the
    client with a certificate (mutual TLS).
    """

    protocol: Protocol = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-256"
    sasl_username: str = ""
    sasl_password: Secret = NO_SECRET
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None

    @property
    def uses_sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def uses_ssl(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    def ssl_context(self) -> ssl.SSLContext | None:
        """A verifying client TLS context, or None when the protocol has no TLS.

        Raises :class:`SecurityError` naming the file that could not be loaded.
        """
        if not self.uses_ssl:
            return None
        cafile = str(self.ssl_cafile) if self.ssl_cafile else None
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            raise SecurityError(f"TICKCAST_KAFKA_SSL_CAFILE={cafile!r}: cannot load CA "
                             f"certificates: {exc}") from None
        if self.ssl_certfile:
            keyfile = str(self.ssl_keyfile) if self.ssl_keyfile else None
            try:
                context.load_cert_chain(str(self.ssl_certfile), keyfile)
            except (OSError, ssl.SSLError) as exc:
                raise SecurityError(
                    f"TICKCAST_KAFKA_SSL_CERTFILE={str(self.ssl_certfile)!r} / "
                    f"TICKCAST_KAFKA_SSL_KEYFILE={keyfile!r}: cannot load the client "
                    f"certificate and key: {exc}") from None
        return context

    def client_kwargs(self) -> dict[str, Any]:
        """Arguments for kafka-python's and aiokafka's producers, consumers and admin clients
        (both libraries name them alike); empty for ``PLAINTEXT``, the libraries' default."""
        if self.protocol == "PLAINTEXT":
            return {}
        kwargs: dict[str, Any] = {"security_protocol": self.protocol,
                                  "ssl_context": self.ssl_context()}
        if self.uses_sasl:
            kwargs.update(sasl_mechanism=self.sasl_mechanism,
                          sasl_plain_username=self.sasl_username,
                          sasl_plain_password=_MaskedStr(self.sasl_password.reveal()))
        return kwargs

    def faust_credentials(self) -> Any:
        """``broker_credentials`` for :class:`faust.App`: ``None`` for ``PLAINTEXT``, else
        :class:`faust.SASLCredentials` or :class:`faust.SSLCredentials` (which Faust's aiokafka
        driver turns into the same arguments as :meth:`client_kwargs`)."""
        if self.protocol == "PLAINTEXT":
            return None
        import faust

        context = self.ssl_context()
        if not self.uses_sasl:
            return faust.SSLCredentials(context)
        return faust.SASLCredentials(username=self.sasl_username,
                                     password=_MaskedStr(self.sasl_password.reveal()),
                                     mechanism=self.sasl_mechanism, ssl_context=context)

    def unreachable(self, servers: list[str], exc: BaseException) -> str:
        """The message of a client that could not connect to ``servers``."""
        return f"cannot reach Kafka at {','.join(servers)}: {exc}" + self.unreachable_hint()

    def unreachable_hint(self) -> str:
        """Appended to "cannot reach Kafka" errors of kafka-python clients: a broker that refuses
        a SASL login closes the connection, and kafka-python (3.0.12) drops the reason it sent
        (aiokafka reports it), so a wrong password looks like an unreachable broker."""
        if not self.uses_sasl:
            return ""
        return (f" (connecting with {self.describe()}: a wrong user name, password or mechanism "
                "fails the same way; check TICKCAST_KAFKA_SASL_* and the broker's log)")

    def describe(self) -> str:
        """One line for logs and banners, never the password."""
        if not self.uses_sasl:
            return self.protocol
        return f"{self.protocol}, {self.sasl_mechanism} as {self.sasl_username!r}"
