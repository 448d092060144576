"""Notifications for incidents: planned in the store, delivered with retries, every attempt recorded.

The planner turns incident changes into ``notifications`` rows, one per channel and recipient:
an incident is announced once it has stayed open for the hold time (a blip is never paged), and
only if it is a root (attached consequences are told inside their root's message, not on their
own, and stay attached for a grace period after the root resolves, so they can clear by
themselves); its resolution is announced if its opening was — for a flapping incident only once
it has stayed resolved for the flap window (or an operator resolved it), so a problem swinging up
and down pages twice, not at every swing. Channels follow ``[[notify]]`` in the inventory: a
channel serves every incident ("*") or some agencies', and an e-mail channel can write to the
incident's agency's own admin. The sender delivers due rows — JSON webhook, Telegram
bot API, SMTP — and on failure retries with backoff (30 s, 2 min, 10 min, 30 min) before recording
the delivery as failed; a receiver that is down loses nothing while it retries.
"""

from __future__ import annotations

import json
import logging
import smtplib
import sqlite3
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage
from typing import Any

from core.errors import PantauError
from noc.incidents import COLUMNS, FLAP_WINDOW_S, detach_orphans
from noc.inventory import Secrets
from noc.model import Inventory, NotifyChannel
from noc.state import StateStore
from noc.views import when

log = logging.getLogger("pantau.notify")

HOLD_S = 60.0
ATTACH_GRACE_S = 180.0  # consequences stay with a resolved root this long (an agent's retry backoff reaches 60 s)
BACKOFF_S = (30.0, 120.0, 600.0, 1800.0)  # then failed: 5 attempts in all
TIMEOUT_S = 10.0


class DeliveryError(PantauError):
    """A notification could not be delivered this time (it is retried)."""


class Notifier:
    def __init__(self, store: StateStore, inv: Inventory, secrets: Secrets, *, hold_s: float = HOLD_S,
                 backoff_s: tuple[float, ...] = BACKOFF_S, attach_grace_s: float = ATTACH_GRACE_S,
                 city: str = "") -> None:
        self.store, self.inv, self.secrets = store, inv, secrets
        self.hold_s, self.backoff_s, self.attach_grace_s = hold_s, backoff_s, attach_grace_s
        self.city = city or inv.city
        self.channels = {ch.id: ch for ch in inv.notify}
        self.admin_email = {a.id: a.admin_email for a in inv.agencies}
        self.senders: dict[str, Callable[[NotifyChannel, str, dict[str, Any]], None]] = {
            "webhook": self._webhook, "telegram": self._telegram, "email": self._email}

    # -- planning -----------------------------------------------------------------------------
    def plan(self, now: float | None = None) -> int:
        """Queue what incident changes call for; returns rows queued."""
        now = self.store.clock() if now is None else now
        queued = 0
        with self.store.tx() as c:
            detach_orphans(c, now, grace_s=self.attach_grace_s)
            # a flapping incident's resolution waits until it has stayed resolved for the flap window
            # (unless an operator resolved it): a problem going up and down does not page at every swing
            done = c.execute("SELECT id, agency FROM incidents WHERE resolved_at IS NOT NULL AND notify_state=1 "
                             "AND (flaps = 0 OR resolved_by != 'pantau' OR resolved_at <= ?) ORDER BY resolved_at",
                             (now - FLAP_WINDOW_S,)).fetchall()
            for iid, agency in done:
                queued += self._queue(c, iid, agency, "resolved", now)
                c.execute("UPDATE incidents SET notify_state=2 WHERE id=?", (iid,))
            due = c.execute("SELECT id, agency FROM incidents WHERE resolved_at IS NULL AND parent_id IS NULL "
                            "AND notify_state != 1 AND opened_at <= ? ORDER BY opened_at", (now - self.hold_s,)
                            ).fetchall()
            for iid, agency in due:
                queued += self._queue(c, iid, agency, "opened", now)
                c.execute("UPDATE incidents SET notify_state=1 WHERE id=?", (iid,))
        return queued

    def _queue(self, c: sqlite3.Connection, iid: int, agency: str | None, event: str, now: float) -> int:
        n = 0
        for ch in self.channels.values():
            if not ch.covers(agency):
                continue
            targets = [""]
            if ch.kind == "email":
                targets = list(ch.to) + ([self.admin_email[agency]] if ch.to_agency_admin and agency
                                         and self.admin_email.get(agency) else [])
            for t in targets:
                c.execute("INSERT INTO notifications (incident_id, event, channel, target, status, next_at, "
                          "created_at) VALUES (?,?,?,?,?,?,?)", (iid, event, ch.id, t, "pending", now, now))
                n += 1
        return n

    # -- delivery -----------------------------------------------------------------------------
    def deliver(self, now: float | None = None, limit: int = 50) -> tuple[int, int]:
        """Send the due notifications; (sent, failed this round). Network calls happen outside transactions."""
        now = self.store.clock() if now is None else now
        rows = self.store.conn.execute(
            "SELECT id, incident_id, event, channel, target, attempts FROM notifications "
            "WHERE status='pending' AND next_at <= ? ORDER BY id LIMIT ?", (now, limit)).fetchall()
        sent = failed = 0
        for nid, iid, event, channel, target, attempts in rows:
            ch = self.channels.get(channel)
            try:
                if ch is None:
                    raise DeliveryError(f"channel {channel!r} is no longer in the inventory")
                self.senders[ch.kind](ch, target, self._message(iid, event))
            except (PantauError, OSError, smtplib.SMTPException, ValueError) as exc:
                attempts += 1
                final = ch is None or attempts > len(self.backoff_s)
                with self.store.tx() as c:
                    c.execute("UPDATE notifications SET attempts=?, status=?, next_at=?, last_error=? WHERE id=?",
                              (attempts, "failed" if final else "pending",
                               now + (0 if final else self.backoff_s[attempts - 1]), str(exc)[:500], nid))
                failed += 1
                where = f"{channel}{' to ' + target if target else ''}"
                if final:
                    log.error("notification of incident #%d (%s) via %s FAILED for good after %d attempt(s): %s",
                              iid, event, where, attempts, exc)
                else:
                    log.warning("notification of incident #%d (%s) via %s failed (attempt %d), retrying in %.0f s: %s",
                                iid, event, where, attempts, self.backoff_s[attempts - 1], exc)
                continue
            with self.store.tx() as c:
                c.execute("UPDATE notifications SET attempts=?, status='sent', sent_at=? WHERE id=?",
                          (attempts + 1, self.store.clock(), nid))
            sent += 1
        return sent, failed

    def _message(self, iid: int, event: str) -> dict[str, Any]:
        c = self.store.conn
        inc = dict(zip(COLUMNS, c.execute(
            "SELECT id, key, category, agency, device, summary, opened_at, resolved_at, acked_at, acked_by, "
            "resolved_by, parent_id, flaps FROM incidents WHERE id=?", (iid,)).fetchone(), strict=True))
        attached = [r[0] for r in c.execute("SELECT summary FROM incidents WHERE parent_id=? ORDER BY id", (iid,))]
        head = "RESOLVED" if event == "resolved" else "OPEN"
        text = f"[pantau {self.city}] {head} #{iid} {inc['category']}: {inc['summary']}"
        if inc["flaps"]:
            text += f" (flapping: back {inc['flaps']} time(s) within {FLAP_WINDOW_S / 60:.0f} min of clearing)"
        if event == "resolved":
            text += f" — resolved {when(inc['resolved_at'])} by {inc['resolved_by'] or 'pantau'}"
        if attached:
            text += f"\n{len(attached)} consequence(s) attached: " + "; ".join(attached[:5])
        return {"event": event, "city": self.city, "incident": {**inc, "attached": attached}, "text": text}

    # -- channels -------------------------------------------------------------------------------
    def _webhook(self, ch: NotifyChannel, _target: str, msg: dict[str, Any]) -> None:
        _post_json(ch.url, msg, f"webhook {ch.id}")

    def _telegram(self, ch: NotifyChannel, _target: str, msg: dict[str, Any]) -> None:
        assert ch.bot_token is not None
        token = self.secrets.resolve(ch.bot_token, f"notify channel {ch.id}")
        reply = _post_json(f"{ch.api_url.rstrip('/')}/bot{token}/sendMessage",
                           {"chat_id": ch.chat_id, "text": msg["text"], "disable_web_page_preview": True},
                           f"Telegram channel {ch.id}", hide=token)
        if not isinstance(reply, dict) or not reply.get("ok"):
            raise DeliveryError(f"Telegram channel {ch.id}: the bot API refused the message: "
                                f"{str(reply)[:200]}")

    def _email(self, ch: NotifyChannel, target: str, msg: dict[str, Any]) -> None:
        m = EmailMessage()
        inc = msg["incident"]
        m["Subject"] = (f"[pantau] {'RESOLVED' if msg['event'] == 'resolved' else 'OPEN'} #{inc['id']} "
                        f"{inc['category']}: {inc['agency'] or inc['device'] or ''}")
        m["From"], m["To"] = ch.sender, target
        m.set_content(msg["text"] + "\n\n" + json.dumps(inc, indent=2, default=str))
        password = self.secrets.resolve(ch.password, f"notify channel {ch.id}") if ch.password else None
        try:
            with smtplib.SMTP(ch.smtp_host, ch.smtp_port, timeout=TIMEOUT_S) as smtp:
                if ch.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if ch.username and password:
                    smtp.login(ch.username, password)
                smtp.send_message(m)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"e-mail channel {ch.id} via {ch.smtp_host}:{ch.smtp_port} to {target}: {exc}") \
                from exc


def _post_json(url: str, body: dict[str, Any], what: str, hide: str = "") -> Any:
    shown = url.replace(hide, "***") if hide else url
    if not url.startswith(("http://", "https://")):
        raise DeliveryError(f"{what}: {shown} is not an http(s) URL")
    data = json.dumps(body, default=str).encode()
    req = urllib.request.Request(url, data=data, method="POST",  # noqa: S310 (scheme checked above)
                                 headers={"Content-Type": "application/json", "User-Agent": "pantau-notify"})
    try:
        with urllib.request.urlopen(req, timeout=TIMEOUT_S) as r:  # noqa: S310 (scheme checked above)
            raw = r.read()
    except urllib.error.HTTPError as exc:
        raise DeliveryError(f"{what}: {shown} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{what}: cannot reach {shown}: {reason}") from None
    try:
        return json.loads(raw or b"null")
    except ValueError:
        return None
