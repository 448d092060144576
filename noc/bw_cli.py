"""`pantau bw …`: show, change, plan, apply and analyse the division of the uplinks among agencies.

Every command takes the inventory (capacities, floors, prefixes, routers) and the NOC state
(base rates, loans, history). Commands that change something have ``--dry-run`` and need
``--reason``; every accepted change is one audited transaction. ``--json`` everywhere.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import click

from core.errors import ConfigError
from core.units import format_rate, parse_duration, parse_rate
from noc.bandwidth.alloc import Book, Rates
from noc.bandwidth.ledger import Change, Ledger, history
from noc.cli import db_option, inventory_read_option, operator_name, operator_option
from noc.inventory import Secrets, load_inventory, secrets_path
from noc.model import Inventory
from noc.state import StateStore
from noc.views import table, when

inventory_required = click.option("--inventory", type=click.Path(path_type=Path, exists=True), required=True,
                                  envvar="PANTAU_INVENTORY", help="city inventory (TOML) [env PANTAU_INVENTORY]")
json_option = click.option("--json", "as_json", is_flag=True, help="machine-readable output")
dry_run_option = click.option("--dry-run", is_flag=True, help="show what would change; change nothing")


def change_options(f: Any) -> Any:
    """The options every command that changes the division takes."""
    for option in reversed((inventory_required, db_option, operator_option, dry_run_option, json_option)):
        f = option(f)
    return f


def _open(inventory: Path, db: Path) -> tuple[Inventory, StateStore, Ledger]:
    inv = load_inventory(inventory)
    store = StateStore(db)
    store.sync_inventory(inv)
    ledger = Ledger(store, inv)
    ledger.seed()
    ledger.expire_due()
    return inv, store, ledger


def _secrets(inventory: Path, inv: Inventory) -> Secrets:
    return Secrets(secrets_path(inventory, inv))


def _pair(text: str | None, what: str) -> tuple[int | None, int | None]:
    """``"300M"`` (download only) or ``"300M/150M"`` (download/upload); ``"/150M"`` for upload only."""
    if text is None:
        return None, None
    down, _, up = text.partition("/")
    try:
        return (parse_rate(down) if down.strip() else None), (parse_rate(up) if up.strip() else None)
    except ValueError as exc:
        raise ConfigError(f"--{what} {text!r}: {exc}; write DOWN or DOWN/UP, e.g. 300M/150M") from None


def _until(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        return time.time() + parse_duration(text)
    except ValueError:
        pass
    try:
        import datetime as dt

        t = dt.datetime.fromisoformat(text)
        return (t if t.tzinfo else t.replace(tzinfo=dt.UTC)).timestamp()
    except ValueError:
        raise ConfigError(f"--until {text!r}: write a duration (\"6h\", \"2d\") or a time "
                          "(\"2026-12-01T18:00\", UTC unless it carries an offset)") from None


def _print_change(ch: Change, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"action": ch.action, "dry_run": ch.dry_run,
                               "before": {a: r.as_dict() for a, r in ch.before.items()},
                               "after": {a: r.as_dict() for a, r in ch.after.items()},
                               "loan": None if ch.loan is None else {"id": ch.loan.id, "until": ch.loan.until}},
                              indent=2))
        return
    head = "would change (dry run, nothing written):" if ch.dry_run else "changed:"
    if not ch.after:
        click.echo("no rate changes (the request matches the current division)")
        return
    click.echo(head)
    rows = []
    for a in ch.after:
        b, n = ch.before[a], ch.after[a]
        for d in ("down", "up"):
            if (b.g(d), b.c(d)) != (n.g(d), n.c(d)):
                rows.append([a, d, f"{format_rate(b.g(d))} / {format_rate(b.c(d))}",
                             f"{format_rate(n.g(d))} / {format_rate(n.c(d))}"])
    click.echo(table(["AGENCY", "DIR", "BEFORE (guaranteed / ceiling)", "AFTER"], rows))
    if ch.loan is not None:
        click.echo(f"temporary: reverts by itself at {when(ch.loan.until)}")
    if not ch.dry_run:
        click.echo("routers follow within one reconcile interval of a running NOC; push now with `pantau bw apply`")


@click.command("show")
@inventory_required
@db_option
@click.option("--window", default="24h", show_default=True, help="window of the 95th percentile")
@json_option
def bw_show(inventory: Path, db: Path, window: str, as_json: bool) -> None:
    """Per agency: guaranteed, ceiling, current usage, 95th percentile and utilisation of the ceiling."""
    _, store, ledger = _open(inventory, db)
    rows, uplinks = show_rows(store, ledger, parse_duration(window))
    if as_json:
        click.echo(json.dumps({"agencies": rows, "uplinks": uplinks}, indent=2))
        return
    click.echo(show_table(rows, uplinks, window))


def show_rows(store: StateStore, ledger: Ledger, window_s: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per agency and direction: rates in force, current use, p95, utilisation; per uplink: the sums."""
    from noc.bandwidth.usage import p95

    book = ledger.book()
    now = store.clock()
    eff = book.effective(now)
    usage = store.agency_usage(now)
    pct = p95(store, sorted(eff), window_s)
    until: dict[tuple[str, str], float] = {}
    for loan, _, _ in ledger.loans():
        for a in (loan.src, loan.dst):
            until[(a, loan.direction)] = min(loan.until, until.get((a, loan.direction), loan.until))
    rows: list[dict[str, Any]] = []
    for a in sorted(eff):
        r = eff[a]
        for i, d in enumerate(("down", "up")):
            cur = usage.get(a, (None, None))[i]
            rows.append({"agency": a, "uplink": book.uplink_of[a], "direction": d, "guaranteed_bps": r.g(d),
                         "ceiling_bps": r.c(d), "current_bps": cur, "p95_bps": pct.get((a, d)),
                         "utilisation": None if cur is None or not r.c(d) else cur / r.c(d),
                         "temporary_until": until.get((a, d))})
    uplinks: list[dict[str, Any]] = [
        {"uplink": u, "direction": d, "capacity_bps": book.cap(u, d),
         "guaranteed_sum_bps": sum(eff[a].g(d) for a in eff if book.uplink_of[a] == u)}
        for u in sorted(book.capacity) for d in ("down", "up")]
    return rows, uplinks


def show_table(rows: list[dict[str, Any]], uplinks: list[dict[str, Any]], window: str) -> str:
    agencies = table(["AGENCY", "DIR", "GUARANTEED", "CEILING", "NOW", f"P95 {window}", "USE/CEIL", "NOTE"], [
        [x["agency"], x["direction"], format_rate(x["guaranteed_bps"]), format_rate(x["ceiling_bps"]),
         format_rate(x["current_bps"]), format_rate(x["p95_bps"]),
         "-" if x["utilisation"] is None else f"{x['utilisation']:.0%}",
         f"temporary until {when(x['temporary_until'])}" if x["temporary_until"] else ""] for x in rows])
    totals = table(["UPLINK", "DIR", "CAPACITY", "GUARANTEED SUM", "UNGUARANTEED"], [
        [u["uplink"], u["direction"], format_rate(u["capacity_bps"]), format_rate(u["guaranteed_sum_bps"]),
         format_rate(u["capacity_bps"] - u["guaranteed_sum_bps"])] for u in uplinks])
    return f"{agencies}\n\n{totals}"


def router_table(store: StateStore) -> str:
    """What the reconciler last saw on each shaping router."""
    rows = store.conn.execute("SELECT device, checked_at, in_sync, drift, last_push_at, last_push_ok, last_error "
                              "FROM bw_router ORDER BY device").fetchall()
    body = []
    for dev, checked, in_sync, drift, pushed, ok, err in rows:
        state = "unreadable" if in_sync is None else "in sync" if in_sync else f"{len(json.loads(drift))} drift"
        body.append([dev, when(checked), state, when(pushed), "-" if ok is None else "verified" if ok else "FAILED",
                     (err or "")[:80]])
    return table(["ROUTER", "CHECKED", "STATE", "LAST PUSH", "PUSH", "ERROR"], body) if body else \
        "no shaping router has been checked yet"


@click.command("set")
@click.argument("agency")
@click.option("--guaranteed", help="guaranteed rate: DOWN or DOWN/UP, e.g. 300M/150M")
@click.option("--ceiling", help="ceiling: DOWN or DOWN/UP, e.g. 800M/400M")
@click.option("--reason", required=True, help="why (memo number, ticket)")
@change_options
def bw_set(agency: str, guaranteed: str | None, ceiling: str | None, reason: str, inventory: Path, db: Path,
           operator: str | None, dry_run: bool, as_json: bool) -> None:
    """Set an agency's base guaranteed rate and ceiling (parts left out keep their value)."""
    if guaranteed is None and ceiling is None:
        raise ConfigError("give --guaranteed and/or --ceiling")
    _, _, ledger = _open(inventory, db)
    book = ledger.book()
    cur = book.base.get(agency)
    if cur is None:
        raise ConfigError(f"agency {agency!r} has no allocation; agencies with one: {', '.join(sorted(book.base))}")
    gd, gu = _pair(guaranteed, "guaranteed")
    cd, cu = _pair(ceiling, "ceiling")
    new = Rates(cur.g_down if gd is None else gd, cur.c_down if cd is None else cd,
                cur.g_up if gu is None else gu, cur.c_up if cu is None else cu)
    _print_change(ledger.set(agency, new, operator_name(operator), reason, dry_run), as_json)


@click.command("move")
@click.argument("amount")
@click.option("--from", "src", required=True, help="agency that gives guaranteed rate")
@click.option("--to", "dst", required=True, help="agency that receives it")
@click.option("--direction", type=click.Choice(["down", "up"]), default="down", show_default=True)
@click.option("--until", help="temporary: a duration (6h) or a time (2026-12-01T18:00Z); reverts by itself")
@click.option("--reason", required=True, help="why (memo number, ticket, event)")
@change_options
def bw_move(amount: str, src: str, dst: str, direction: str, until: str | None, reason: str, inventory: Path,
            db: Path, operator: str | None, dry_run: bool, as_json: bool) -> None:
    """Move AMOUNT of guaranteed rate from one agency to another: both change or neither."""
    try:
        bps = parse_rate(amount)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    _, _, ledger = _open(inventory, db)
    _print_change(ledger.move(bps, src, dst, direction, operator_name(operator), reason, _until(until), dry_run),
                  as_json)


def _reports(inventory: Path, db: Path, repair: bool, dry_run: bool, device: str | None, actor: str | None,
             reason: str) -> list[Any]:
    from noc.bandwidth.reconcile import reconcile, record

    inv, store, ledger = _open(inventory, db)
    reports = reconcile(inv, ledger.book().effective(store.clock()), _secrets(inventory, inv), repair=repair,
                        dry_run=dry_run, only=device)
    if not dry_run:
        record(store, reports, actor, reason)
    return reports


def _print_reports(reports: list[Any], as_json: bool, verb: str) -> None:
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2))
        return
    if not reports:
        click.echo("no shaping routers in the inventory (add a shaping section to a router)")
    for r in reports:
        if r.error:
            click.echo(f"{r.device}: FAILED: {r.error}")
        elif r.in_sync and not r.pushed:
            click.echo(f"{r.device}: in sync ({r.seconds:.1f}s)")
        elif r.pushed:
            click.echo(f"{r.device}: {verb} and verified by read-back ({len(r.commands)} commands, {r.seconds:.1f}s)")
        else:
            click.echo(f"{r.device}: {len(r.drift)} difference(s) from the division ({r.mode} mode):")
        for line in r.drift:
            click.echo(f"    {line}")
        if r.commands and not r.pushed:
            click.echo("  would send:")
            for c in r.commands:
                click.echo(f"    {c}")


@click.command("plan")
@click.option("--device", help="only this router")
@click.option("--show-commands", is_flag=True, help="also print the vendor commands a push would send")
@inventory_required
@db_option
@json_option
def bw_plan(device: str | None, show_commands: bool, inventory: Path, db: Path, as_json: bool) -> None:
    """What each router would change: the division (desired) against what the router holds (actual)."""
    reports = _reports(inventory, db, repair=show_commands, dry_run=True, device=device, actor=None, reason="")
    _print_reports(reports, as_json, "would change")
    if any(r.error for r in reports):
        raise SystemExit(7)


@click.command("apply")
@click.option("--device", help="only this router")
@click.option("--reason", default="bw apply", show_default=True)
@change_options
def bw_apply(device: str | None, reason: str, inventory: Path, db: Path, operator: str | None, dry_run: bool,
             as_json: bool) -> None:
    """Push the division to every shaping router, read it back, and report per router."""
    reports = _reports(inventory, db, repair=True, dry_run=dry_run, device=device, actor=operator_name(operator),
                       reason=reason)
    _print_reports(reports, as_json, "changed")
    if any(r.error for r in reports):
        raise SystemExit(7)


@click.command("history")
@click.argument("agency", required=False)
@click.option("--limit", default=50, show_default=True)
@db_option
@inventory_read_option
@json_option
def bw_history(agency: str | None, limit: int, db: Path, as_json: bool) -> None:
    """Every change to the division (who, when, before, after, why), oldest first."""
    entries = history(StateStore(db), agency, limit)
    if as_json:
        click.echo(json.dumps([e.__dict__ for e in entries], indent=2))
        return
    rows = []
    for e in entries:
        for a in sorted(set(e.before) | set(e.after)):
            if a.startswith("_") or (agency and a != agency):
                continue
            b, n = e.before.get(a) or {}, e.after.get(a) or {}
            rows.append([when(e.at), e.actor, e.action, a, _short(b), _short(n), e.reason])
    click.echo(table(["WHEN", "WHO", "ACTION", "AGENCY", "BEFORE (down g/c, up g/c)", "AFTER", "WHY"], rows)
               if rows else "no bandwidth changes recorded")


def _short(r: dict[str, Any]) -> str:
    if not r or not isinstance(r, dict) or "guaranteed_down" not in r:
        return "-"
    return (f"{format_rate(r['guaranteed_down'])}/{format_rate(r['ceiling_down'])}, "
            f"{format_rate(r['guaranteed_up'])}/{format_rate(r['ceiling_up'])}")


@click.command("analyze")
@click.option("--window", default="30d", show_default=True, help="usage window for the 95th percentile")
@click.option("--headroom", default=1.2, show_default=True, help="proposed guarantee = p95 × headroom")
@click.option("--accept", is_flag=True, help="apply the proposal as one audited change")
@click.option("--reason", default=None, help="why (needed with --accept)")
@inventory_required
@db_option
@operator_option
@json_option
def bw_analyze(window: str, headroom: float, accept: bool, reason: str | None, inventory: Path, db: Path,
               operator: str | None, as_json: bool) -> None:
    """Needs analysis: p95 usage against each allocation, and a max-min fair proposal that keeps every invariant."""
    from noc.bandwidth.analyze import propose
    from noc.bandwidth.usage import p95

    _, store, ledger = _open(inventory, db)
    book: Book = ledger.book()
    pct = p95(store, sorted(book.base), parse_duration(window))
    proposal, needs = propose(book, pct, store.clock(), headroom)
    if as_json and not accept:
        click.echo(json.dumps({"needs": [n.__dict__ | {"utilisation": n.utilisation} for n in needs],
                               "proposal": {a: r.as_dict() for a, r in proposal.items()}}, indent=2))
        return
    if not as_json:
        click.echo(table(["AGENCY", "DIR", f"P95 {window}", "GUARANTEED", "P95/GUAR", "PROPOSED"], [
            [n.agency, n.direction, format_rate(n.p95_bps), format_rate(n.guaranteed),
             "-" if n.utilisation is None else f"{n.utilisation:.0%}", format_rate(n.proposed)] for n in needs]))
    if accept:
        if not reason:
            raise ConfigError("--accept needs --reason (memo number, ticket)")
        _print_change(ledger.accept(proposal, operator_name(operator), reason), as_json)
    else:
        click.echo("\naccept this proposal as one audited change with: --accept --reason \"…\"")
