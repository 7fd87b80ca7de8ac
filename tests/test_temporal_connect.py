"""The settings that reach a Temporal cluster: TLS from PEM files, an API key implying TLS."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.service import TLSConfig

from wulian.settings import Settings
from wulian.temporal_connect import tls_config


def test_the_dev_server_is_reached_without_tls(tmp_path: Path) -> None:
    assert tls_config(Settings(data_dir=tmp_path)) is False


def test_an_api_key_or_the_switch_turns_tls_on(tmp_path: Path) -> None:
    assert tls_config(Settings(data_dir=tmp_path, temporal_api_key="k")) is True
    assert tls_config(Settings(data_dir=tmp_path, temporal_tls=True)) is True


def test_certificate_files_are_read_into_the_tls_config(tmp_path: Path) -> None:
    for name in ("ca.pem", "cert.pem", "key.pem"):
        (tmp_path / name).write_bytes(f"-----{name}-----".encode())
    config = tls_config(Settings(data_dir=tmp_path, temporal_tls_ca_file=tmp_path / "ca.pem",
                                 temporal_tls_cert_file=tmp_path / "cert.pem",
                                 temporal_tls_key_file=tmp_path / "key.pem"))
    assert isinstance(config, TLSConfig)
    assert (config.server_root_ca_cert, config.client_cert, config.client_private_key) == (
        b"-----ca.pem-----", b"-----cert.pem-----", b"-----key.pem-----")


def test_a_client_certificate_without_its_key_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cert.pem").write_bytes(b"x")
    with pytest.raises(ValueError, match="go together"):
        tls_config(Settings(data_dir=tmp_path, temporal_tls_cert_file=tmp_path / "cert.pem"))
