"""Sends spooled reports to the NOC collector over HTTP(S) with the standard library only.

The outcome of one POST is data (:class:`SendResult`) so the loop decides what to do: remove
acknowledged reports, set aside a report the NOC refuses for good, or back off and retry.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SendResult:
    """What the collector said about one batch."""

    ok: bool
    status: int  # HTTP status, 0 when the NOC could not be reached
    acked: list[int] = field(default_factory=list)
    message: str = ""
    retry_after: float | None = None

    @property
    def permanent(self) -> bool:
        """The batch itself is bad: re-sending it unchanged will never work."""
        return self.status in (400, 413, 422)


class Sender:
    """POSTs batches to ``{url}/api/v1/reports`` with the agent's bearer token."""

    def __init__(self, url: str, token: str, *, ca_file: str | None = None, timeout: float = 10.0) -> None:
        self.endpoint = url.rstrip("/") + "/api/v1/reports"
        self._token = token
        self.timeout = timeout
        self._ssl: ssl.SSLContext | None = None
        if self.endpoint.startswith("https://"):
            self._ssl = ssl.create_default_context(cafile=ca_file)

    def send(self, batch: dict[str, Any]) -> SendResult:
        body = json.dumps(batch, separators=(",", ":")).encode()
        req = urllib.request.Request(  # noqa: S310 - the scheme is the operator's configured NOC URL
            self.endpoint,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Authorization": f"Bearer {self._token}",
                "User-Agent": "pantau-agent/1",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout, context=self._ssl) as resp:  # noqa: S310
                payload = json.loads(resp.read() or b"{}")
                acked = [int(s) for s in payload.get("accepted", [])] + [
                    int(s) for s in payload.get("duplicates", [])
                ]
                return SendResult(True, resp.status, acked)
        except urllib.error.HTTPError as exc:
            detail = exc.read(4096).decode("utf-8", "replace")
            with contextlib.suppress(ValueError, AttributeError):
                detail = json.loads(detail).get("error", detail)
            retry = exc.headers.get("Retry-After") if exc.headers else None
            return SendResult(
                False, exc.code, message=str(detail)[:500], retry_after=float(retry) if retry else None
            )
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            return SendResult(False, 0, message=f"cannot reach the NOC at {self.endpoint}: {reason}")
