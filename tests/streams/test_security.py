"""Kafka security settings: validated with errors naming the variable, turned into the same
client arguments for kafka-python, aiokafka and Faust, and the password never shown."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from tests.helpers import make_pki
from tickcast.streams.security import KafkaSecurity, Secret
from tickcast.streams.settings import Settings, SettingsError

PASSWORD = "pw-Zq81-never-shown"
SASL = {"TICKCAST_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "TICKCAST_KAFKA_SASL_USERNAME": "tickcast",
        "TICKCAST_KAFKA_SASL_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_pki(tmp_path_factory.mktemp("pki"))


def test_plaintext_by_default_and_no_client_arguments() -> None:
    security = Settings.from_env({}).kafka_security
    assert security.protocol == "PLAINTEXT"
    assert security.client_kwargs() == {}
    assert security.faust_credentials() is None


def test_sasl_scram_arguments_are_the_same_for_every_client() -> None:
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    settings = Settings.from_env({**SASL, "TICKCAST_KAFKA_SECURITY_PROTOCOL": "sasl_plaintext"})
    kwargs = settings.kafka_security.client_kwargs()
    assert kwargs == {"security_protocol": "SASL_PLAINTEXT", "ssl_context": None,
                      "sasl_mechanism": "SCRAM-SHA-256", "sasl_plain_username": "tickcast",
                      "sasl_plain_password": PASSWORD}
    # Faust's aiokafka driver derives its clients' arguments from the credentials object.
    assert credentials_to_aiokafka_auth(settings.kafka_security.faust_credentials()) == kwargs


def test_sasl_ssl_and_ssl_carry_a_verifying_context(pki: dict[str, Path]) -> None:
    import ssl

    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

    for protocol in ("SASL_SSL", "SSL"):
        env = {**(SASL if protocol == "SASL_SSL" else {}),
               "TICKCAST_KAFKA_SECURITY_PROTOCOL": protocol,
               "TICKCAST_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
               "TICKCAST_KAFKA_SSL_CAFILE": str(pki["ca"]),
               "TICKCAST_KAFKA_SSL_CERTFILE": str(pki["cert"]),
               "TICKCAST_KAFKA_SSL_KEYFILE": str(pki["key"])}
        security = Settings.from_env(env).kafka_security
        kwargs = security.client_kwargs()
        context = kwargs["ssl_context"]
        assert kwargs["security_protocol"] == protocol
        assert context.verify_mode == ssl.CERT_REQUIRED
        assert context.check_hostname
        assert ("sasl_mechanism" in kwargs) is (protocol == "SASL_SSL")
        faust_kwargs = credentials_to_aiokafka_auth(security.faust_credentials())
        assert faust_kwargs["security_protocol"] == protocol
        assert isinstance(faust_kwargs["ssl_context"], ssl.SSLContext)
        if protocol == "SASL_SSL":
            assert faust_kwargs["sasl_mechanism"] == "SCRAM-SHA-512"


def test_password_file_is_read_and_its_newline_dropped(tmp_path: Path) -> None:
    secret = tmp_path / "kafka_password"
    secret.write_text(PASSWORD + "\n")
    env = {**SASL, "TICKCAST_KAFKA_SASL_PASSWORD_FILE": str(secret)}
    del env["TICKCAST_KAFKA_SASL_PASSWORD"]
    settings = Settings.from_env(env)
    assert settings.kafka_sasl_password.reveal() == PASSWORD


@pytest.mark.parametrize(("env", "words"), [
    ({"TICKCAST_KAFKA_SECURITY_PROTOCOL": "TLS"},
     "TICKCAST_KAFKA_SECURITY_PROTOCOL='TLS' is invalid: expected PLAINTEXT or SSL or "
     "SASL_PLAINTEXT or SASL_SSL"),
    ({**SASL, "TICKCAST_KAFKA_SASL_MECHANISM": "GSSAPI"},
     "TICKCAST_KAFKA_SASL_MECHANISM='GSSAPI' is invalid"),
    ({**SASL, "TICKCAST_KAFKA_SASL_USERNAME": " "},
     "TICKCAST_KAFKA_SASL_USERNAME='' is invalid: expected a user name with "
     "TICKCAST_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT"),
    ({**SASL, "TICKCAST_KAFKA_SASL_PASSWORD": ""},
     "needs a password: set TICKCAST_KAFKA_SASL_PASSWORD or TICKCAST_KAFKA_SASL_PASSWORD_FILE"),
    ({**SASL, "TICKCAST_KAFKA_SASL_PASSWORD_FILE": "/nonexistent/secret"},
     "both set"),
    ({**SASL, "TICKCAST_KAFKA_SASL_PASSWORD": "", "TICKCAST_KAFKA_SASL_PASSWORD_FILE":
      "/nonexistent/secret"},
     "TICKCAST_KAFKA_SASL_PASSWORD_FILE='/nonexistent/secret' cannot be read"),
    ({"TICKCAST_KAFKA_SASL_USERNAME": "tickcast", "TICKCAST_KAFKA_SASL_PASSWORD": PASSWORD},
     "TICKCAST_KAFKA_SECURITY_PROTOCOL='PLAINTEXT' does not use them"),
    ({"TICKCAST_KAFKA_SSL_CAFILE": "/etc/hostname"},
     "TICKCAST_KAFKA_SSL_CAFILE='/etc/hostname' is invalid: expected unset, or "
     "TICKCAST_KAFKA_SECURITY_PROTOCOL=SSL or SASL_SSL (is PLAINTEXT)"),
    ({"TICKCAST_KAFKA_SECURITY_PROTOCOL": "SSL", "TICKCAST_KAFKA_SSL_CAFILE": "/no/ca.pem"},
     "TICKCAST_KAFKA_SSL_CAFILE='/no/ca.pem' is invalid: expected an existing file"),
])
def test_bad_security_settings_are_explained(env: dict[str, str], words: str) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    assert words in str(info.value)
    assert PASSWORD not in str(info.value)


def test_unloadable_pem_files_fail_at_start(tmp_path: Path, pki: dict[str, Path]) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n")
    base = {"TICKCAST_KAFKA_SECURITY_PROTOCOL": "SSL"}
    with pytest.raises(SettingsError, match=r"TICKCAST_KAFKA_SSL_CAFILE='.*junk\.pem': cannot"):
        Settings.from_env({**base, "TICKCAST_KAFKA_SSL_CAFILE": str(junk)})
    with pytest.raises(SettingsError, match="cannot load the client certificate and key"):
        Settings.from_env({**base, "TICKCAST_KAFKA_SSL_CERTFILE": str(pki["cert"]),
                           "TICKCAST_KAFKA_SSL_KEYFILE": str(junk)})
    with pytest.raises(SettingsError, match=r"TICKCAST_KAFKA_SSL_KEYFILE.*expected unset without"):
        Settings.from_env({**base, "TICKCAST_KAFKA_SSL_KEYFILE": str(pki["key"])})


def test_the_password_never_shows(capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from tickcast.cli import main

    settings = Settings.from_env(SASL)
    security = settings.kafka_security
    shown = [repr(settings), str(settings), repr(security), f"{settings.kafka_sasl_password}",
             security.describe(), security.unreachable_hint(),
             repr(security.client_kwargs()), repr(security.faust_credentials())]
    assert not [text for text in shown if PASSWORD in text]
    assert "********" in repr(security.client_kwargs())
    assert repr(Secret()) == "Secret('')"
    for var, value in SASL.items():
        monkeypatch.setenv(var, value)
    assert main(["config"]) == 0
    assert main(["config", "--markdown"]) == 0
    assert PASSWORD not in capsys.readouterr().out


def test_a_library_logging_its_configuration_shows_a_mask(caplog: pytest.LogCaptureFixture
                                                          ) -> None:
    """kafka-python's admin client logs every argument at DEBUG before it connects."""
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from tests.helpers import free_port

    kwargs = Settings.from_env(SASL).kafka_security.client_kwargs()
    # (the CLI keeps the "kafka" loggers at WARNING; a user's own logging setup may not)
    with caplog.at_level(logging.DEBUG, logger="kafka"), pytest.raises(KafkaError):
        KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{free_port()}",
                         bootstrap_timeout_ms=200, **kwargs)
    assert "sasl_plain_password': '********'" in caplog.text
    assert PASSWORD not in caplog.text


def test_the_faust_app_gets_the_credentials_without_connecting() -> None:
    import faust

    from tickcast.streams.app import build_app

    service = build_app(Settings.from_env({**SASL, "TICKCAST_KAFKA_SASL_MECHANISM":
                                           "SCRAM-SHA-512"}))
    credentials = service.app.conf.broker_credentials
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.mechanism.value) == ("tickcast", "SCRAM-SHA-512")
    assert PASSWORD not in repr(credentials)


def test_only_sasl_adds_a_hint_to_unreachable_errors() -> None:
    assert KafkaSecurity().unreachable_hint() == ""
    hint = Settings.from_env(SASL).kafka_security.unreachable_hint()
    assert "SASL_PLAINTEXT, SCRAM-SHA-256 as 'tickcast'" in hint
