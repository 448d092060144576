"""Notifications to real receivers started here: an HTTP server recording webhooks and Telegram bot
API calls, and an SMTP server (aiosmtpd) recording mail. A receiver that is down gets retries and,
in the end, a recorded failure — never a silently lost notification."""

from __future__ import annotations

import json
import socket
import textwrap
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from aiosmtpd.controller import Controller

from noc import procs
from noc.incidents import open_incident, resolve_incident
from noc.inventory import Secrets, parse_inventory
from noc.notify import Notifier
from noc.state import StateStore

pytestmark = pytest.mark.integration

BOT_TOKEN = "123456:test-bot-token"


class Recorder(BaseHTTPRequestHandler):
    calls: ClassVar[list[tuple[str, dict[str, Any]]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.calls.append((self.path, body))
        reply = {"ok": True, "result": {"message_id": len(self.calls)}} if "/sendMessage" in self.path else {}
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


class Http:
    def __init__(self, port: int | None = None) -> None:
        self.handler = type("R", (Recorder,), {"calls": []})
        self.port = port or procs.free_port()
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), self.handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def calls(self) -> list[tuple[str, dict[str, Any]]]:
        return self.handler.calls  # type: ignore[no-any-return]


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def receivers() -> Iterator[tuple[Http, Mailbox, int]]:
    http = Http()
    http.start()
    box = Mailbox()
    smtp_port = procs.free_port()
    ctl = Controller(box, hostname="127.0.0.1", port=smtp_port)
    ctl.start()
    yield http, box, smtp_port
    ctl.stop()
    http.stop()


def _city(http: Http, smtp_port: int, down_port: int, late: Http) -> str:
    return textwrap.dedent(f"""\
        [city]
        name = "Kota Uji"
        [[uplinks]]
        id = "isp"
        down = "1 Gbit"
        up = "1 Gbit"
        [[agencies]]
        id = "dinkes"
        name = "Dinas Kesehatan"
        admin_email = "admin@dinkes.kota.go.id"
        [[agencies]]
        id = "disdik"
        name = "Dinas Pendidikan"
        admin_email = "admin@disdik.kota.go.id"
        [[devices]]
        id = "rtr"
        kind = "router"
        address = "10.99.1.1"
        [[devices]]
        id = "srv"
        agency = "dinkes"
        kind = "server"
        address = "10.99.1.10"
        agent = true
        via = "rtr"
        [[notify]]
        id = "noc-hook"
        kind = "webhook"
        url = "http://127.0.0.1:{http.port}/pantau"
        [[notify]]
        id = "noc-telegram"
        kind = "telegram"
        bot_token = "env:PT_BOT"
        chat_id = "-100200300"
        api_url = "http://127.0.0.1:{http.port}"
        [[notify]]
        id = "mail"
        kind = "email"
        smtp_host = "127.0.0.1"
        smtp_port = {smtp_port}
        starttls = false
        sender = "pantau@kota.go.id"
        to = ["noc@kota.go.id"]
        to_agency_admin = true
        [[notify]]
        id = "disdik-only"
        kind = "webhook"
        agencies = ["disdik"]
        url = "http://127.0.0.1:{http.port}/disdik"
        [[notify]]
        id = "dead-hook"
        kind = "webhook"
        url = "http://127.0.0.1:{down_port}/never"
        [[notify]]
        id = "late-hook"
        kind = "webhook"
        url = "http://127.0.0.1:{late.port}/late"
        """)


def _free_closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again: nothing listens there


def test_incident_reaches_every_channel_once_and_a_down_receiver_gets_retries(
        receivers: tuple[Http, Mailbox, int], tmp_path: Path) -> None:
    http, box, smtp_port = receivers
    late = Http()  # down at first, up for the retry
    inv = parse_inventory(_city(http, smtp_port, _free_closed_port(), late))
    now = [1_800_000_000.0]
    store = StateStore(tmp_path / "noc.sqlite", clock=lambda: now[0])
    store.sync_inventory(inv)
    notifier = Notifier(store, inv, Secrets(environ={"PT_BOT": BOT_TOKEN}), hold_s=60, backoff_s=(1.0, 1.0))

    with store.tx() as c:
        open_incident(c, now[0], "down:rtr", "device_down", "rtr is down", device="rtr")
        open_incident(c, now[0], "down:srv", "device_down", "srv (dinkes) is down", agency="dinkes", device="srv")
    assert notifier.plan() == 0  # held: a blip pages nobody
    now[0] += 61
    queued = notifier.plan()
    assert queued == 5  # rtr (no agency): hook, telegram, mail to the NOC, dead-hook, late-hook; srv is attached
    sent, failed = notifier.deliver()
    assert (sent, failed) == (3, 2)

    [body] = [b for p, b in http.calls if p == "/pantau"]
    assert body["event"] == "opened" and body["incident"]["key"] == "down:rtr"
    assert body["incident"]["attached"] == ["srv (dinkes) is down"]  # the consequence rides in the root's message
    [(tpath, tbody)] = [(p, b) for p, b in http.calls if "sendMessage" in p]
    assert tpath == f"/bot{BOT_TOKEN}/sendMessage" and tbody["chat_id"] == "-100200300"
    assert "OPEN #1 device_down: rtr is down" in tbody["text"] and "1 consequence(s) attached" in tbody["text"]
    [(rcpt, mail)] = box.messages
    assert rcpt == ["noc@kota.go.id"] and "OPEN #1 device_down" in mail["Subject"]
    assert not any(p == "/disdik" for p, _ in http.calls)  # routed by agency

    # the late receiver comes up: its retry delivers; the dead one ends as a recorded failure
    late.start()
    try:
        now[0] += 1.5
        assert notifier.deliver() == (1, 1)
        now[0] += 1.5
        assert notifier.deliver() == (0, 1)
        assert [p for p, _ in late.calls] == ["/late"]
    finally:
        late.stop()
    rows = {ch: (st, n, err) for ch, st, n, err in store.conn.execute(
        "SELECT channel, status, attempts, last_error FROM notifications")}
    assert rows["late-hook"][:2] == ("sent", 2)
    status, attempts, err = rows["dead-hook"]
    assert status == "failed" and attempts == 3 and "cannot reach http://127.0.0.1:" in err

    # an agency's own incident: its admin gets mail, the agency's channel its webhook
    with store.tx() as c:
        resolve_incident(c, now[0], "down:rtr")
        resolve_incident(c, now[0], "down:srv")
        open_incident(c, now[0], "bw.breach:disdik:down", "bandwidth", "disdik above its ceiling", agency="disdik")
    now[0] += 61
    notifier.plan()
    notifier.deliver()
    assert [b["event"] for p, b in http.calls if p == "/pantau"] == ["opened", "resolved", "opened"]
    assert [b["incident"]["key"] for p, b in http.calls if p == "/disdik"] == ["bw.breach:disdik:down"]
    rcpts = sorted(r[0] for r, _ in box.messages)
    assert rcpts == ["admin@disdik.kota.go.id", "noc@kota.go.id", "noc@kota.go.id", "noc@kota.go.id"]
    # the bot token never lands in the store's records
    assert BOT_TOKEN not in json.dumps(store.conn.execute("SELECT * FROM notifications").fetchall())
    store.close()
