"""The server-rendered pages, by area: ``portal_pages`` (anyone), ``event_pages`` (one event and its
tasks), ``console_pages`` (the command centre), ``inbox`` and the admin pages; shared form helpers in
``page_forms``."""

from __future__ import annotations

from web.console_pages import ConsolePages
from web.event_pages import EventPages
from web.portal_pages import NearbyController, PublicPages

PAGE_CONTROLLERS = [PublicPages, EventPages, ConsolePages, NearbyController]
