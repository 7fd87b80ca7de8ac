"""Login rate limiting, counted in the store (``LoginFailure``) so every web process applies the same
limits and a restart forgets nothing.

Three limits, none of which lets a stranger lock a worker out:

- **the (username, address) pair**: after :data:`PAIR_MAX_FAILURES` failures within
  :data:`WINDOW_SECONDS`, that address may not try that username again until the window has passed;
- **the address**: after :data:`ADDRESS_MAX_FAILURES` failures within the window (any usernames),
  the address may not try any username (against spraying many usernames from one place);
- **the username, across addresses**: after :data:`USER_FREE_FAILURES` failures (from anywhere,
  within :data:`USER_WINDOW_SECONDS`, since the last success), each further attempt must wait a
  delay after the last failure that doubles with each failure, from :data:`USER_BASE_DELAY` up to
  :data:`USER_MAX_DELAY`. A botnet gets one guess per delay. The delay does not apply from an
  address where the user logged in successfully within :data:`KNOWN_DAYS` (a row of kind ``known``):
  a stranger who keeps a username slowed cannot keep its owner out of their usual office or phone
  (only the pair and address limits apply there).

An attempt refused by a limit answers 429 with ``Retry-After`` and never verifies the password.
Every failure is three rows (kinds ``pair``, ``address``, ``user``, each with username and address),
so each limit is reset or lifted on its own: a success clears the username's delay and its own pair,
never the address's count; a supervisor lifts one lockout (``web/lockouts.py``).

An attempt is recorded *before* its password is checked and then judged against the rows written
before its own, so attempts arriving together cannot all slip through the same free moment (exact
on SQLite, whose writers are serialised; on PostgreSQL the race shrinks to the commit of a row).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import col, delete, select
from sqlmodel.ext.asyncio.session import AsyncSession

from store import models
from store.db import Database
from store.timeutil import as_utc
from store.users import audit, authenticate
from web.client_address import client_ip
from web.context import AppContext
from web.i18n import language_of, translate

#: Failures of one username from one address within :data:`WINDOW_SECONDS` before that pair is locked.
PAIR_MAX_FAILURES = 5
#: Failures from one address (any usernames) within :data:`WINDOW_SECONDS` before it is locked.
ADDRESS_MAX_FAILURES = 10
#: The counting window of pairs and addresses, and how long their lockouts last.
WINDOW_SECONDS = 10 * 60
#: Failures of a username (any addresses) that cost no delay.
USER_FREE_FAILURES = 3
#: The first delay, doubled with every further failure, up to :data:`USER_MAX_DELAY` (seconds).
USER_BASE_DELAY = 2
USER_MAX_DELAY = 15 * 60
#: How long a username's failures are remembered (a success forgets them at once).
USER_WINDOW_SECONDS = 24 * 3600

#: An address a username logged in from is "known" for that long: the username's delay spares it.
KNOWN_DAYS = 30

PAIR, ADDRESS, USER, KNOWN = "pair", "address", "user", "known"
KINDS = (PAIR, ADDRESS, USER)
#: The longest username and address kept (the columns' widths).
FIELD_MAX = 64


def _now() -> datetime:
    """The limiter's clock (tests move it)."""
    return datetime.now(UTC)


def user_delay(failures: int) -> float:
    """Seconds a username must wait after its last failure, given its number of failures."""
    if failures <= USER_FREE_FAILURES:
        return 0.0
    return float(min(USER_MAX_DELAY, USER_BASE_DELAY * 2 ** min(failures - USER_FREE_FAILURES - 1, 30)))


def _seconds(wait: float) -> int:
    """A wait as the whole seconds of ``Retry-After`` (never 0 while there is something to wait)."""
    return int(wait) + 1 if wait > 0 else 0


def _norm(username: str, address: str) -> tuple[str, str]:
    return username.strip().lower()[:FIELD_MAX], address[:FIELD_MAX]


@dataclass(frozen=True)
class Lockout:
    """A current lockout or delay, as supervisors see it. ``username`` is empty for an address lockout
    and ``address`` for a username's delay; ``usernames`` are those tried from a locked address and
    ``addresses`` those a delayed username was tried from (at most :data:`SHOWN` of each)."""

    kind: str
    username: str
    address: str
    failures: int
    until: datetime
    usernames: tuple[str, ...] = ()
    addresses: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """What names the lockout in a lift: kind, username, address."""
        return self.kind, self.username, self.address


#: How many usernames or addresses a lockout lists.
SHOWN = 20


@dataclass(frozen=True)
class Attempt:
    """A login attempt allowed by the limits, recorded provisionally as a failure (its row ids)."""

    username: str
    address: str
    ids: tuple[int, ...]


class LoginLimiter:
    """The three login limits over the store's ``LoginFailure`` rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- judging an attempt ---------------------------------------------------------------------

    async def _wait(self, session: AsyncSession, username: str, address: str, now: datetime,
                    before: int | None = None) -> float:
        """Seconds the attempt must wait, counting only rows older than id ``before`` when given."""
        window, user_window = now - timedelta(seconds=WINDOW_SECONDS), now - timedelta(seconds=USER_WINDOW_SECONDS)
        row = models.LoginFailure

        def older(query: Any) -> Any:
            return query if before is None else query.where(col(row.id) < before)

        wait = 0.0
        for kind, limit, match in ((PAIR, PAIR_MAX_FAILURES, (row.username == username, row.address == address)),
                                   (ADDRESS, ADDRESS_MAX_FAILURES, (row.address == address,))):
            stamps = (await session.exec(older(
                select(row.at).where(row.kind == kind, *match, col(row.at) > window)
                .order_by(col(row.at).desc()).limit(limit)))).all()
            if len(stamps) >= limit:
                wait = max(wait, (as_utc(stamps[limit - 1]) - window).total_seconds())
        count, last = (await session.exec(older(
            select(func.count(), func.max(row.at)).where(
                row.kind == USER, row.username == username, col(row.at) > user_window)))).one()
        known = False
        if count and last is not None and user_delay(count) > 0:
            known = (await session.exec(select(row.id).where(
                row.kind == KNOWN, row.username == username, row.address == address,
                col(row.at) > now - timedelta(days=KNOWN_DAYS)).limit(1))).first() is not None
        if count and last is not None and not known:
            wait = max(wait, (as_utc(last) + timedelta(seconds=user_delay(count)) - now).total_seconds())
        return wait

    async def retry_after(self, username: str, ip: str, now: datetime | None = None) -> int:
        """Seconds until ``username`` may be tried from ``ip`` again; 0 when it may be now."""
        username, ip = _norm(username, ip)
        async with self.db.session() as session:
            return _seconds(await self._wait(session, username, ip, now or _now()))

    async def begin(self, username: str, ip: str, now: datetime | None = None) -> Attempt | int:
        """Admit an attempt (recorded as a failure until :meth:`succeeded` says otherwise), or the
        seconds to wait when a limit refuses it."""
        now = now or _now()
        username, ip = _norm(username, ip)
        async with self.db.session() as session:
            wait = await self._wait(session, username, ip, now)
            if wait > 0:
                return _seconds(wait)
            rows = [models.LoginFailure(kind=kind, username=username, address=ip, at=now) for kind in KINDS]
            session.add_all(rows)
            await session.commit()
            ids = tuple(r.id for r in rows if r.id is not None)
            # Judged against what came before it: of attempts arriving together, the first passes.
            wait = await self._wait(session, username, ip, now, before=min(ids))
            if wait > 0:
                await session.exec(delete(models.LoginFailure).where(col(models.LoginFailure.id).in_(ids)))  # type: ignore[call-overload]
                await session.commit()
                return _seconds(wait)
        return Attempt(username=username, address=ip, ids=ids)

    async def failed(self, attempt: Attempt, now: datetime | None = None) -> list[str]:
        """The attempt's password was wrong (its rows stay); forget rows that left their windows.
        Returns the limits this failure starts (``pair``, ``address``, ``user`` for the first delay)."""
        now = now or _now()
        row = models.LoginFailure
        async with self.db.session() as session:
            await session.exec(delete(row).where(  # type: ignore[call-overload]
                col(row.kind) != USER, col(row.at) <= now - timedelta(seconds=WINDOW_SECONDS)))
            await session.exec(delete(row).where(  # type: ignore[call-overload]
                col(row.kind) != KNOWN, col(row.at) <= now - timedelta(seconds=USER_WINDOW_SECONDS)))
            await session.exec(delete(row).where(  # type: ignore[call-overload]
                col(row.kind) == KNOWN, col(row.at) <= now - timedelta(days=KNOWN_DAYS)))
            await session.commit()
            window = now - timedelta(seconds=WINDOW_SECONDS)
            started = []
            for kind, limit, match in (
                (PAIR, PAIR_MAX_FAILURES, (row.username == attempt.username, row.address == attempt.address)),
                (ADDRESS, ADDRESS_MAX_FAILURES, (row.address == attempt.address,)),
                (USER, USER_FREE_FAILURES + 1, (row.username == attempt.username,)),
            ):
                since = window if kind != USER else now - timedelta(seconds=USER_WINDOW_SECONDS)
                count = (await session.exec(select(func.count()).where(
                    row.kind == kind, *match, col(row.at) > since))).one()
                if count == limit:
                    started.append(kind)
        return started

    async def succeeded(self, attempt: Attempt, now: datetime | None = None) -> None:
        """The password was right: the attempt is no failure, the username's delay and this pair's
        count start again from zero (the address's count stays: a spray may include a success), and
        the address becomes known for the username (the username's delay spares it from now on)."""
        row = models.LoginFailure
        async with self.db.session() as session:
            await session.exec(delete(row).where(col(row.id).in_(attempt.ids)))  # type: ignore[call-overload]
            await session.exec(delete(row).where(  # type: ignore[call-overload]
                col(row.username) == attempt.username,
                (col(row.kind) == USER)
                | (col(row.kind).in_((PAIR, KNOWN)) & (col(row.address) == attempt.address))))
            session.add(models.LoginFailure(kind=KNOWN, username=attempt.username, address=attempt.address,
                                            at=now or _now()))
            await session.commit()

    # ---- lockouts, for supervisors --------------------------------------------------------------

    async def lockouts(self, now: datetime | None = None) -> list[Lockout]:
        """Every current lockout (pairs, addresses) and delay (usernames), the longest first."""
        now = now or _now()
        window, user_window = now - timedelta(seconds=WINDOW_SECONDS), now - timedelta(seconds=USER_WINDOW_SECONDS)
        row = models.LoginFailure
        found: list[Lockout] = []
        async with self.db.session() as session:
            pairs = (await session.exec(
                select(row.username, row.address, func.count()).where(row.kind == PAIR, col(row.at) > window)
                .group_by(row.username, row.address).having(func.count() >= PAIR_MAX_FAILURES))).all()
            for username, address, count in pairs:
                stamps = (await session.exec(
                    select(row.at).where(row.kind == PAIR, row.username == username, row.address == address,
                                         col(row.at) > window)
                    .order_by(col(row.at).desc()).limit(PAIR_MAX_FAILURES))).all()
                until = as_utc(stamps[-1]) + timedelta(seconds=WINDOW_SECONDS)
                found.append(Lockout(PAIR, username, address, count, until))
            addresses = (await session.exec(
                select(row.address, func.count(), func.max(row.at)).where(row.kind == ADDRESS, col(row.at) > window)
                .group_by(row.address).having(func.count() >= ADDRESS_MAX_FAILURES))).all()
            for address, count, _ in addresses:
                stamps = (await session.exec(
                    select(row.at).where(row.kind == ADDRESS, row.address == address, col(row.at) > window)
                    .order_by(col(row.at).desc()).limit(ADDRESS_MAX_FAILURES))).all()
                names = (await session.exec(
                    select(row.username).where(row.kind == ADDRESS, row.address == address, col(row.at) > window)
                    .distinct().order_by(row.username))).all()
                until = as_utc(stamps[-1]) + timedelta(seconds=WINDOW_SECONDS)
                found.append(Lockout(ADDRESS, "", address, count, until, usernames=tuple(names)))
            users = (await session.exec(
                select(row.username, func.count(), func.max(row.at)).where(row.kind == USER, col(row.at) > user_window)
                .group_by(row.username).having(func.count() > USER_FREE_FAILURES))).all()
            for username, count, last in users:
                until = as_utc(last) + timedelta(seconds=user_delay(count))
                if until <= now:
                    continue
                tried = (await session.exec(
                    select(row.address).where(row.kind == USER, row.username == username, col(row.at) > user_window)
                    .distinct().order_by(row.address).limit(SHOWN))).all()
                found.append(Lockout(USER, username, "", count, until, addresses=tuple(tried)))
        return sorted(found, key=lambda lock: (-lock.until.timestamp(), lock.kind, lock.username, lock.address))

    async def lift(self, kind: str, username: str, address: str) -> int:
        """Forget the failures behind one lockout (``kind``: pair, address or user); how many rows went."""
        username, address = _norm(username, address)
        row = models.LoginFailure
        match = {PAIR: (col(row.username) == username, col(row.address) == address),
                 ADDRESS: (col(row.address) == address,), USER: (col(row.username) == username,)}[kind]
        async with self.db.session() as session:
            result = await session.exec(delete(row).where(col(row.kind) == kind, *match))  # type: ignore[call-overload]
            await session.commit()
        return int(result.rowcount or 0)


async def guarded_login(ctx: AppContext, request: Any, username: str, password: str,
                        via: str) -> tuple[models.User | None, int]:
    """A login attempt through the limits, audited: ``(user, 0)`` on success, ``(None, 0)`` for a
    wrong username or password, ``(None, seconds)`` when a limit refuses it (the password unchecked).
    ``via`` (``web`` or ``api``) goes into the audit."""
    ip = client_ip(request, ctx.settings)
    limiter = LoginLimiter(ctx.db)
    actor = username[:FIELD_MAX] or "-"
    attempt = await limiter.begin(username, ip)
    if isinstance(attempt, int):
        await audit(ctx.db, actor, "login_locked", target=ip, detail=f"{via}; retry after {attempt} s")
        return None, attempt
    user = await authenticate(ctx.db, username, password)
    if user is None:
        await audit(ctx.db, actor, "login_failed", target=ip, detail=via)
        for kind in await limiter.failed(attempt):
            await audit(ctx.db, actor, "login_lockout", target=ip, detail=f"{via}; {kind}")
        return None, 0
    await limiter.succeeded(attempt)
    await audit(ctx.db, user.username, "login", target=ip, detail=via)
    return user, 0


def wait_text(request: Any, seconds: int) -> str:
    """A wait in the visitor's language: seconds below two minutes, else minutes (rounded up)."""
    lang = language_of(request.cookies)
    if seconds < 120:
        return translate(lang, "login.wait.seconds", n=seconds)
    return translate(lang, "login.wait.minutes", n=-(-seconds // 60))
