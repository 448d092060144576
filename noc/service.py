"""Wires the NOC service together: state store, ingest API, TSDB drainer, housekeeping.

Everything the service touches is passed in (:class:`ServiceConfig`), so tests start the real
service pointed at temporary paths and local servers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from collectors.dist import DistDir
from collectors.ingest import IngestApp, openapi_document
from collectors.snmp.poller import DevicePoll, SnmpScheduler
from collectors.tsdb import InfluxWriter, OutboxDrainer, TsdbConfig
from core.errors import ConfigError, PantauError
from noc.availability import AvailabilityWatcher
from noc.backups import BackupService
from noc.bandwidth.ledger import Ledger
from noc.bandwidth.reconcile import reconcile, record, shaping_routers
from noc.bandwidth.watchdog import Watchdog
from noc.desired import desired_lines
from noc.incidents import open_incident, resolve_incident
from noc.inventory import Secrets, load_inventory, secrets_path
from noc.model import Inventory
from noc.notify import Notifier
from noc.snmp import schedules as snmp_schedules
from noc.state import StateStore

log = logging.getLogger("pantau.noc")


@dataclass(frozen=True)
class ServiceConfig:
    inventory: Path
    db: Path
    listen: str = "127.0.0.1"
    port: int = 8470
    tsdb: TsdbConfig | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    rate_per_agent: float = 5.0
    burst_per_agent: float = 20.0
    prune_every_s: float = 3600.0
    desired_every_s: float = 60.0
    snmp_concurrency: int = 64
    reconcile_every_s: float = 300.0  # also at once after any bandwidth change
    watch_every_s: float = 60.0  # usage watchdog cadence
    backup_every_s: float = 900.0  # DR copy + backup verification pass (0: off); checks/drills when due
    uptime_every_s: float = 10.0  # availability check, notification planning and delivery
    notify_hold_s: float = 60.0  # an incident is announced once open this long (a blip pages nobody)
    dist_dir: Path | None = None  # package files served at /dist/ to agency servers (pip --find-links)


def tls_context(cert: Path | None, key: Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(str(cert), str(key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot load the TLS certificate {cert} / key {key}: {exc}") from exc
    return ctx


async def serve(cfg: ServiceConfig, *, ready: asyncio.Event | None = None, stop: asyncio.Event | None = None) -> None:
    """Run the NOC until SIGTERM/SIGINT or ``stop`` is set."""
    inv = load_inventory(cfg.inventory)
    sslctx = tls_context(cfg.tls_cert, cfg.tls_key)
    store = StateStore(cfg.db)
    store.sync_inventory(inv)
    Ledger(store, inv).seed()
    scheme = "https" if sslctx else "http"
    ingest = IngestApp(store, rate_per_agent=cfg.rate_per_agent, burst_per_agent=cfg.burst_per_agent,
                       openapi=openapi_document(f"{scheme}://{cfg.listen}:{cfg.port}"))
    app = ingest.build()
    if cfg.dist_dir is not None:
        dist = DistDir(cfg.dist_dir)
        dist.add_routes(app)
        log.info("serving %d package file(s) from %s at /dist/", len(dist.files()), cfg.dist_dir)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, cfg.listen, cfg.port, ssl_context=sslctx, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(f"cannot listen on {cfg.listen}:{cfg.port}: {exc.strerror}; "
                          "is another NOC running? choose --port") from exc
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    tasks = []
    writer = None
    if cfg.tsdb is not None:
        # The drainer has its own connection: its reads and deletes never wait behind ingest's thread.
        drain_store = StateStore(cfg.db)
        writer = InfluxWriter(cfg.tsdb)
        tasks.append(asyncio.create_task(OutboxDrainer(drain_store, writer).run(stop)))
        log.info("writing metrics to %s (bucket %s)", cfg.tsdb.url, cfg.tsdb.bucket)
    else:
        log.info("no time-series store configured (--tsdb-url): metrics wait in the NOC outbox")
    tasks.append(asyncio.create_task(_housekeeping(cfg, inv, stop)))
    tasks.append(asyncio.create_task(_bandwidth(cfg, inv, stop)))
    tasks.append(asyncio.create_task(_uptime(cfg, inv, stop)))
    if inv.backup_policies and cfg.backup_every_s > 0:
        tasks.append(asyncio.create_task(_backups(cfg, inv, stop)))
    poller = _snmp_poller(cfg, inv)
    if poller is not None:
        tasks.append(asyncio.create_task(poller.run(stop)))
    log.info("NOC %s listening on %s://%s:%d with %d agencies and %d devices (state %s)",
             inv.city or "(unnamed city)", scheme, cfg.listen, cfg.port, len(inv.agencies), len(inv.devices), cfg.db)
    if ready is not None:
        ready.set()
    await stop.wait()
    log.info("NOC stopping")
    await runner.cleanup()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if writer is not None:
        writer.close()
    store.close()


def _snmp_poller(cfg: ServiceConfig, inv: Inventory) -> SnmpScheduler | None:
    """The SNMP scheduler for every device with SNMP access; its results go to their own connection."""
    secrets = Secrets(secrets_path(cfg.inventory, inv))
    scheds, problems = snmp_schedules(inv, secrets)
    for p in problems:
        log.error("%s", p)
    if not scheds:
        return None
    store = StateStore(cfg.db)
    store.adopt_inventory(inv)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pantau-snmp-db")
    down_since: dict[str, float] = {}

    async def record(poll: DevicePoll) -> None:
        # log changes of reachability, not every failed poll: one line when a device stops
        # answering, one when it is back
        if not poll.ok and poll.device not in down_since:
            down_since[poll.device] = poll.started_at
            log.warning("%s", poll.error)
        elif poll.ok and poll.device in down_since:
            log.info("%s answers SNMP again after %.0fs", poll.device, poll.started_at - down_since.pop(poll.device))
        await asyncio.get_running_loop().run_in_executor(pool, store.apply_poll, poll)

    log.info("polling %d device(s) over SNMP", len(scheds))
    return SnmpScheduler(scheds, record, concurrency=cfg.snmp_concurrency)


async def _housekeeping(cfg: ServiceConfig, inv: Inventory, stop: asyncio.Event) -> None:
    """Every minute: the desired state as metrics; every ``prune_every_s``: drop expired state."""
    store = StateStore(cfg.db)
    ledger = Ledger(store, inv)
    next_prune = 0.0
    try:
        while not stop.is_set():
            lines = desired_lines(inv, ledger.book(), time.time_ns())
            if lines:
                await asyncio.to_thread(_queue, store, lines)
            if time.monotonic() >= next_prune:
                removed = await asyncio.to_thread(store.prune)
                if any(removed.values()):
                    log.info("pruned expired state: %s", removed)
                next_prune = time.monotonic() + cfg.prune_every_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=cfg.desired_every_s)
    finally:
        store.close()


async def _bandwidth(cfg: ServiceConfig, inv: Inventory, stop: asyncio.Event) -> None:
    """Ends loans on time, reconciles the routers after every change and every ``reconcile_every_s``,
    and runs the usage watchdog."""
    store = StateStore(cfg.db)
    ledger = Ledger(store, inv)
    secrets = Secrets(secrets_path(cfg.inventory, inv))
    watchdog = Watchdog()
    has_routers = bool(shaping_routers(inv))
    seen_change, next_run, next_watch = -1, 0.0, time.monotonic() + cfg.watch_every_s
    try:
        while not stop.is_set():
            ended = await asyncio.to_thread(ledger.expire_due)
            for loan in ended:
                log.info("temporary move #%d (%s -> %s) ended; rates reverted", loan.id, loan.src, loan.dst)
            last = await asyncio.to_thread(_last_bw_change, store)
            if has_routers and (last != seen_change or time.monotonic() >= next_run):
                seen_change = last
                rates = ledger.book().effective(store.clock())
                reports = await asyncio.to_thread(reconcile, inv, rates, secrets, repair=None)
                await asyncio.to_thread(record, store, reports, None, "", cfg.reconcile_every_s)
                for r in reports:
                    if r.error:
                        log.error("%s: %s", r.device, r.error)
                    elif r.pushed:
                        log.info("%s: repaired %d difference(s) from the division, verified by read-back", r.device,
                                 len(r.drift))
                    elif r.drift:
                        log.warning("%s drifted from the division (observe mode, not repaired): %s", r.device,
                                    "; ".join(r.drift))
                next_run = time.monotonic() + cfg.reconcile_every_s
            if time.monotonic() >= next_watch:
                await asyncio.to_thread(_watch, store, ledger, watchdog)
                next_watch = time.monotonic() + cfg.watch_every_s
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(2.0, cfg.watch_every_s))
    finally:
        store.close()


async def _uptime(cfg: ServiceConfig, inv: Inventory, stop: asyncio.Event) -> None:
    """Every ``uptime_every_s``: up/down per device, then notifications planned and delivered."""
    store = StateStore(cfg.db)
    watcher = AvailabilityWatcher(store, inv)
    notifier = Notifier(store, inv, Secrets(secrets_path(cfg.inventory, inv)), hold_s=cfg.notify_hold_s)
    try:
        while not stop.is_set():
            try:
                await asyncio.to_thread(watcher.observe)
                await asyncio.to_thread(notifier.plan)
                await asyncio.to_thread(notifier.deliver)
            except Exception:  # one bad pass must not end uptime tracking for good
                log.exception("the uptime pass failed; the next one runs in %.0f s", cfg.uptime_every_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=cfg.uptime_every_s)
    finally:
        store.close()


async def _backups(cfg: ServiceConfig, inv: Inventory, stop: asyncio.Event) -> None:
    """Every ``backup_every_s``: copy what the DR site lacks, then verify both sites of every policy."""
    store = StateStore(cfg.db)
    svc = BackupService(store, inv, Secrets(secrets_path(cfg.inventory, inv)), workdir=cfg.db.parent / "backup-drills")
    try:
        seen: dict[tuple[str, str], str] = {}
        while not stop.is_set():
            try:
                await asyncio.to_thread(_backup_pass, svc, seen)
            except Exception:  # a bug in one pass must not end backup verification for good
                log.exception("the backup pass failed; the next one runs in %.0f s", cfg.backup_every_s)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=cfg.backup_every_s)
    finally:
        store.close()


def _backup_pass(svc: BackupService, seen: dict[tuple[str, str], str]) -> None:
    """One pass; a site's verdict is logged when it changes, not at every pass."""
    t0 = time.monotonic()
    pols = svc.policies()
    for p in pols:
        copied, _ = svc.replicate(p)  # a failed copy is logged and recorded; parity flags it
        if copied:
            log.info("%s: %d snapshot(s) copied to the DR site", p.agency, copied)
    try:
        verdicts = svc.verify(pols)
    except PantauError as exc:
        log.error("backup verification could not run: %s", exc)
        return
    bad = [v for v in verdicts if v.verdict != "ok"]
    for v in verdicts:
        if seen.get((v.agency, v.site)) != v.verdict:
            seen[(v.agency, v.site)] = v.verdict
            if v.verdict == "ok":
                log.info("backup %s at %s: ok", v.agency, v.site)
            else:
                log.warning("backup %s at %s: %s", v.agency, v.site, "; ".join(f.message for f in v.findings[:2]))
    log.info("backups verified: %d site(s), %d not ok, in %.1f s", len(verdicts), len(bad), time.monotonic() - t0)


def _last_bw_change(store: StateStore) -> int:
    row = store.conn.execute("SELECT max(id) FROM audit WHERE action IN ('bw.set', 'bw.move', 'bw.expire', "
                             "'bw.reallocate', 'bw.seed')").fetchone()
    return int(row[0] or 0)


def _watch(store: StateStore, ledger: Ledger, watchdog: Watchdog) -> None:
    """Measured usage against the ceilings: open an incident for a breach, resolve it when it ends."""
    now = store.clock()
    rates = ledger.book().effective(now)
    breaches, cleared = watchdog.observe(store.agency_usage(now), rates)
    with store.tx() as c:
        for b in breaches:
            open_incident(c, now, b.key, "bandwidth", b.summary(), agency=b.agency)
        for agency, d in cleared:
            resolve_incident(c, now, f"bw.breach:{agency}:{d}")
        store.outbox_add(c, [b.line(int(now * 1e9)) for b in breaches])


def _queue(store: StateStore, lines: list[str]) -> None:
    with store.tx() as c:
        store.outbox_add(c, lines)
