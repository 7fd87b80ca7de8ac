"""One way to reach Temporal for every process (worker, web, CLI, typed client): the address and
namespace of the settings, with TLS (mTLS) and an API key when the settings give them."""

from __future__ import annotations

from pathlib import Path

from temporalio.client import Client
from temporalio.service import TLSConfig

from wulian.settings import Settings


def tls_config(settings: Settings) -> TLSConfig | bool:
    """The TLS configuration of the settings: False (plain, the dev server), True (the system's CA
    bundle) or a :class:`TLSConfig` with the CA, client certificate and key files read from disk."""
    files = (settings.temporal_tls_ca_file, settings.temporal_tls_cert_file, settings.temporal_tls_key_file)
    if not any(files):
        return bool(settings.temporal_tls or settings.temporal_api_key)
    ca, cert, key = (Path(f).read_bytes() if f else None for f in files)
    if (cert is None) != (key is None):
        raise ValueError("WULIAN_TEMPORAL_TLS_CERT_FILE and WULIAN_TEMPORAL_TLS_KEY_FILE go together")
    return TLSConfig(server_root_ca_cert=ca, client_cert=cert, client_private_key=key)


async def connect(settings: Settings, *, address: str | None = None, namespace: str | None = None) -> Client:
    """A Temporal client for ``settings`` (``address`` and ``namespace`` override theirs)."""
    return await Client.connect(
        address or settings.temporal_address,
        namespace=namespace or settings.temporal_namespace,
        tls=tls_config(settings),
        api_key=settings.temporal_api_key or None,
    )
