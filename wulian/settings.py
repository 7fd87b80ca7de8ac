"""The one typed settings object of the platform (environment variables ``WULIAN_*``).

Every process (worker, web, launcher, CLI) reads its configuration from here and nowhere else.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from workflows import policy

#: Passwords that only demo mode may use; a production start refuses users holding them.
DEMO_PASSWORDS = ("admin12345", "demo12345")


class Settings(BaseSettings):
    """Platform settings; each field can be set with ``WULIAN_<FIELD>`` (e.g. ``WULIAN_WEB_PORT``)."""

    model_config = SettingsConfigDict(env_prefix="WULIAN_", env_file=".env", extra="ignore")

    #: ``demo`` loads demo data and allows demo passwords; ``production`` refuses both.
    mode: str = Field(default="demo", pattern="^(demo|production)$")
    #: Demo mode: past events the launcher writes into a store without events (a year of history for
    #: the dashboard and the indicators; ``store.demo_history``). 0: none.
    demo_history_events: int = Field(default=3000, ge=0)
    data_dir: Path = Path("var")
    database_url: str = ""  # empty: SQLite file under data_dir
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    #: Connecting to a Temporal cluster (``wulian/temporal_connect.py``; docs/ARCHITECTURE.md,
    #: "Production shape"): TLS on or off, and optionally the CA bundle that signs the server's
    #: certificate and a client certificate and key (mTLS), as PEM files. Off for the local dev server.
    temporal_tls: bool = False
    temporal_tls_ca_file: Path | None = None
    temporal_tls_cert_file: Path | None = None
    temporal_tls_key_file: Path | None = None
    #: An API key for Temporal Cloud or a cluster that takes them (sent as a bearer token; implies TLS).
    #: Give it in the environment (``WULIAN_TEMPORAL_API_KEY``), never in a committed file.
    temporal_api_key: str = ""
    temporal_task_queue: str = "wulian-events"
    temporal_ui_port: int = 8233
    #: Base address of the Temporal UI, used for links from the event page.
    temporal_ui_url: str = "http://127.0.0.1:8233"
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=1, le=65535)
    #: Secret for signing login tokens and CSRF cookies; generated into data_dir if empty.
    secret_key: str = ""
    token_ttl_hours: int = Field(default=12, ge=1, le=24 * 30)
    #: Where reporter notices are POSTed as JSON; empty: the logging SMS/WeChat stand-in.
    notify_webhook_url: str = ""
    #: Seconds the web waits for a new event's intake to be recorded before answering 202.
    intake_wait_seconds: float = 10.0
    #: The address residents open the web at (links in notices); empty: http://web_host:web_port.
    public_url: str = ""
    #: Public tracking (``/track``, ``/api/track``): requests per client address and window.
    track_requests_per_window: int = Field(default=120, ge=1)
    track_window_seconds: int = Field(default=600, ge=1)
    #: "Follow / me too" on the nearby list: per client address and hour.
    follows_per_hour: int = Field(default=20, ge=1)
    #: Processes a resident may request on the portal (``/p/new/<kind>``) per client address and hour.
    process_starts_per_hour: int = Field(default=10, ge=1)
    #: Requests one integration's API key may make per minute (web/api_keys.py); over it: 429.
    api_key_requests_per_minute: int = Field(default=120, ge=1)
    #: "Follow / me too" with a phone: follows one phone number may receive notices for, per day.
    follows_per_phone_per_day: int = Field(default=5, ge=1)
    #: Photos one client address may upload without logging in (the report page) per hour.
    photo_anonymous_per_hour: int = Field(default=12, ge=0)
    #: Total bytes of anonymous photos not (yet) attached to an event; further anonymous uploads wait.
    photo_unattached_max_bytes: int = Field(default=200_000_000, ge=0)
    #: Hours after which a photo never attached to an event is deleted (row and file).
    photo_unattached_hours: float = Field(default=24.0, gt=0)
    #: Reverse proxies whose ``X-Forwarded-For`` the web believes: addresses or CIDR networks separated
    #: by commas or spaces (``10.0.0.0/8, 192.0.2.7``). Empty: the client address is the socket's peer,
    #: whatever the request's headers say (``web/client_address.py``).
    trusted_proxies: str = ""
    #: Connections of a worker's store pool, kept open and never exceeded. The worker runs at most
    #: this many store operations at once (half projections, half routing and deliveries), so none
    #: of them waits for a connection (``worker.store_limits``).
    worker_store_connections: int = Field(default=10, ge=2, le=400)
    #: Worker processes ``make run`` starts on the task queue (each with its own store pool and
    #: workflow cache; Temporal spreads the work). 0: by core count (:meth:`worker_count`).
    worker_processes: int = Field(default=0, ge=0, le=64)
    #: Workflows a worker keeps in memory between their tasks (Temporal's ``max_cached_workflows``).
    #: An event waits days between human actions; one evicted from the cache is rebuilt from its
    #: history on its next task (a replay: a few milliseconds for an intake, more for long events).
    #: Each cached event costs memory (bench/throughput.py measures it); 0 disables the cache.
    worker_cached_workflows: int = Field(default=1000, ge=0, le=100_000)
    #: Concurrent long polls a worker keeps open for workflow tasks and for activity tasks.
    worker_workflow_pollers: int = Field(default=5, ge=1, le=100)
    worker_activity_pollers: int = Field(default=5, ge=1, le=100)
    #: The dashboard's target line for the share of events resolved at street and community level
    #: (街道社区两级办结率, a fraction; the seed's figure, 97.3%).
    dashboard_grassroots_target: float = Field(default=0.973, ge=0, le=1)
    #: Outbound webhooks (``store/webhooks.py``, ``workflows/webhook_delivery.py``). Whether a
    #: subscription may target loopback, private (RFC 1918, CGNAT, unique-local) addresses: off in
    #: production; link-local addresses (169.254.0.0/16 with the cloud metadata service, fe80::/10),
    #: multicast, unspecified and reserved ones are refused whatever this says.
    webhook_allow_private_targets: bool = False
    #: A change not delivered this long after it was queued (or replayed) is given up: dead-lettered,
    #: shown on /admin/webhooks, replayable.
    webhook_give_up_hours: float = Field(default=72.0, gt=0)
    #: The retries' exponential back-off: first wait, doubling up to the maximum.
    webhook_retry_initial_seconds: float = Field(default=5.0, gt=0)
    webhook_retry_max_seconds: float = Field(default=600.0, gt=0)
    #: Seconds a receiver has to answer one delivery attempt (the attempt's activity gets 5 s more).
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    #: A delivery workflow with nothing to send looks again this often even without being woken.
    webhook_poll_seconds: float = Field(default=300.0, gt=0)
    #: Camera alarms of one camera and category at most this many minutes after the previous one join
    #: its open event as one more occurrence, never a new event (``store/camera_alarms.py``).
    camera_window_minutes: int = Field(default=30, ge=1, le=24 * 60)
    #: Hours after a merge of a duplicate (合并) within which a supervisor may undo it
    #: (``workflows.policy.MERGE_UNDO_HOURS`` and its bounds).
    merge_undo_hours: int = Field(default=policy.MERGE_UNDO_HOURS, ge=policy.MIN_MERGE_UNDO_HOURS,
                                  le=policy.MAX_MERGE_UNDO_HOURS)
    #: Days back that a new report looks for open reports it may duplicate (``store/duplicates.py``).
    duplicate_days: int = Field(default=30, ge=1, le=365)

    #: Log lines of every process (web, worker, launcher, CLI; ``wulian/logs.py``): ``json``, one JSON
    #: object a line with the bound event id, workflow id and actor, for machines (the default, and what
    #: production should keep); ``console``, coloured key=value lines for a developer's terminal.
    log_format: str = Field(default="json", pattern="^(json|console)$")
    log_level: str = Field(default="INFO", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    #: Bearer token that admits a scraper to the web's ``/metrics`` from anywhere. Empty: ``/metrics``
    #: answers only requests from this machine (loopback) that did not come through a proxy; every
    #: other request gets 404 (``web/metrics.py``).
    metrics_token: str = ""
    #: Port of a worker's Prometheus endpoint (``http://127.0.0.1:<port>/metrics``: the Temporal SDK's
    #: metrics and the activities', ``wulian/telemetry.py``), bound to loopback. 0: none. Several worker
    #: processes on one machine need a port each.
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    #: Address the worker's metrics endpoint binds to: loopback, for a scraper on this machine; a
    #: scraper elsewhere needs an address it reaches (and a network that keeps others out: the
    #: endpoint has no login).
    worker_metrics_host: str = "127.0.0.1"
    #: Seconds ``/readyz`` waits for the store's ``SELECT 1`` and for Temporal's health check each.
    readiness_timeout_seconds: float = Field(default=2.0, gt=0, le=30)
    #: Seconds a readiness answer is reused: however often ``/readyz`` is asked, one process probes the
    #: store and Temporal at most once in this time.
    readiness_cache_seconds: float = Field(default=1.0, ge=0, le=60)

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: str) -> str:
        for part in value.replace(",", " ").split():
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"not an address or CIDR network: {part!r}") from None
        return value

    @property
    def db_url(self) -> str:
        """The SQLAlchemy async URL of the store."""
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'wulian.db'}"

    @property
    def public_base_url(self) -> str:
        """Where residents reach the web (``public_url``, else the local web address)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(self.web_host, self.web_host)  # noqa: S104
        return f"http://{host}:{self.web_port}"

    @property
    def worker_count(self) -> int:
        """Worker processes to start: ``worker_processes``, else one per two cores (at least one).
        Why half: on one machine the Temporal server and the web need the other half (measured in
        bench/README.md, "Throughput")."""
        return self.worker_processes or max(1, (os.cpu_count() or 1) // 2)

    def secret(self) -> str:
        """The signing secret: the configured one, or one kept in ``data_dir/secret.key``."""
        if self.secret_key:
            return self.secret_key
        path = self.data_dir / "secret.key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_urlsafe(48))
            path.chmod(0o600)
        return path.read_text().strip()


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
