"""A small asyncio SNMP client on pysnmp 7: multi-column GETBULK table walks with scalars.

Errors become :mod:`core.errors` exceptions that name the device and say what to check. Values come
back as plain Python (int, str); MIB look-ups are off (numeric OIDs only).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from typing import Any

from pysnmp.hlapi.v3arch.asyncio import (
    CommunityData,
    ContextData,
    ObjectIdentity,
    ObjectType,
    SnmpEngine,
    UdpTransportTarget,
    UsmUserData,
    bulk_cmd,
    usmAesCfb128Protocol,
    usmAesCfb256Protocol,
    usmDESPrivProtocol,
    usmHMAC192SHA256AuthProtocol,
    usmHMACMD5AuthProtocol,
    usmHMACSHAAuthProtocol,
)
from pysnmp.proto import rfc1905
from pysnmp.proto.rfc1902 import OctetString

from core.errors import DeviceAuthError, DeviceError, DeviceUnreachable

_AUTH = {"SHA": usmHMACSHAAuthProtocol, "SHA256": usmHMAC192SHA256AuthProtocol, "MD5": usmHMACMD5AuthProtocol}
_PRIV = {"AES": usmAesCfb128Protocol, "AES128": usmAesCfb128Protocol, "AES256": usmAesCfb256Protocol,
         "DES": usmDESPrivProtocol}
_AUTH_FAILURES = {"WrongDigest", "UnknownUserName", "DecryptionError", "UnknownSecurityName",
                  "UnsupportedSecLevel", "AuthenticationError", "UnknownEngineID"}
_END = (rfc1905.EndOfMibView, rfc1905.NoSuchObject, rfc1905.NoSuchInstance)
log = logging.getLogger("pantau.snmp")


@dataclass(frozen=True)
class SnmpTarget:
    """Where and how to ask. Secrets are resolved values and never appear in repr()."""

    name: str
    host: str
    port: int = 161
    version: str = "2c"
    community: str = field(default="", repr=False)
    user: str = ""
    auth_key: str = field(default="", repr=False)
    priv_key: str = field(default="", repr=False)
    auth_protocol: str = "SHA"
    priv_protocol: str = "AES"
    timeout: float = 2.0
    retries: int = 1

    @property
    def where(self) -> str:
        return f"{self.name} ({self.host}:{self.port})"


def _oid_key(oid: str) -> tuple[int, ...]:
    return tuple(int(x) for x in oid.split(".") if x)


def _plain(value: Any) -> int | str | None:
    if isinstance(value, _END):
        return None
    if isinstance(value, OctetString):
        raw = bytes(value.asOctets())
        return raw.decode("utf-8", "replace").rstrip("\x00")
    try:
        return int(value)
    except (TypeError, ValueError):
        return str(value)


def _forget_peer(engine: SnmpEngine, address: tuple[str, int]) -> bool:
    """Drop what ``engine`` learned of the SNMPv3 agent at ``address`` (engine ID, boots, time).

    pysnmp keeps this for 5 minutes and offers no call to drop it; a device that restarted (new
    boots) or was replaced (new engine ID) is not understood until then. The caches are private to
    pysnmp 7 (the version pinned in pyproject.toml): the entry leaves the cache *and* its expiry
    queue (pysnmp's timer deletes what the queue names without looking). If they move, this does
    nothing and says so once, and pysnmp's own 5-minute expiry still applies.
    """
    mp = engine.message_processing_subsystems.get(3)
    usm = engine.security_models.get(3)
    peers = getattr(mp, "_SnmpV3MessageProcessingModel__engineIdCache", None)
    expiring = getattr(mp, "_SnmpV3MessageProcessingModel__engineIdCacheExpQueue", None)
    timeline = getattr(usm, "_SnmpUSMSecurityModel__timeline", None)
    if not all(isinstance(d, dict) for d in (peers, expiring, timeline)):
        _warn_internals_moved()
        return False
    assert isinstance(peers, dict) and isinstance(expiring, dict) and isinstance(timeline, dict)
    keys = [k for k in peers if tuple(k[1])[:2] == tuple(address)[:2]]
    for k in keys:
        timeline.pop(peers.pop(k)["securityEngineId"], None)
        for queued in expiring.values():
            while k in queued:
                queued.remove(k)
    return bool(keys)


@functools.cache
def _warn_internals_moved() -> None:
    log.warning("this pysnmp keeps SNMPv3 discovery elsewhere: a restarted device is understood again "
                "only after pysnmp's 5-minute cache expiry")


class SnmpClient:
    """Shares SNMP engines between requests; one client per poller.

    An SNMPv3 engine remembers what it discovered of each device. When a device that answered
    before stops answering, the client forgets that and asks once more, discovering afresh: a
    router that rebooted (its engineBoots went up) or was replaced (a new engine ID) is read again
    at once, not after pysnmp's 5-minute cache expiry.
    """

    def __init__(self) -> None:
        self._engines: dict[tuple[str, ...], SnmpEngine] = {}
        self._discovered: set[tuple[str, int]] = set()  # v3 devices that answered since last forgotten

    def _engine(self, t: SnmpTarget) -> SnmpEngine:
        # SNMPv3 users are registered in the engine: one engine per distinct v3 credential set,
        # so two devices with the same user name but different keys never collide.
        key = ("v2c",) if t.version == "2c" else ("v3", t.user, t.auth_key, t.priv_key, t.auth_protocol,
                                                  t.priv_protocol)
        eng = self._engines.get(key)
        if eng is None:
            eng = self._engines[key] = SnmpEngine()
        return eng

    def _auth(self, t: SnmpTarget) -> CommunityData | UsmUserData:
        if t.version == "2c":
            return CommunityData(t.community, mpModel=1)  # noqa: S508 - v2c where the device has no v3
        try:
            return UsmUserData(t.user, t.auth_key, t.priv_key, authProtocol=_AUTH[t.auth_protocol.upper()],
                               privProtocol=_PRIV[t.priv_protocol.upper()])
        except KeyError as exc:
            raise DeviceError(f"{t.where}: unsupported SNMPv3 protocol {exc}; use auth SHA/SHA256/MD5 and "
                              "priv AES/AES256/DES") from None

    async def _transport(self, t: SnmpTarget) -> UdpTransportTarget:
        try:
            return await UdpTransportTarget.create((t.host, t.port), timeout=t.timeout, retries=t.retries)
        except Exception as exc:  # name resolution and socket errors
            raise DeviceUnreachable(f"{t.where}: cannot address the device: {exc}") from exc

    def _check(self, t: SnmpTarget, err_ind: Any, err_status: Any, err_index: Any) -> None:
        if err_ind:
            kind = type(err_ind).__name__
            text = str(err_ind)
            if kind == "RequestTimedOut" or "timeout" in text.lower():
                hint = ("the device is down or unreachable, or it ignores our SNMP community"
                        if t.version == "2c" else
                        "the device is down or unreachable, or our SNMPv3 privacy key is wrong "
                        "(a device that cannot decrypt a request stays silent)")
                raise DeviceUnreachable(
                    f"{t.where}: no SNMP answer within {t.timeout:g}s x {t.retries + 1} tries: {hint}")
            if kind in _AUTH_FAILURES:
                raise DeviceAuthError(f"{t.where}: the device refused our SNMPv3 credentials for user "
                                      f"{t.user!r} ({text}); check the auth/priv keys and protocols")
            raise DeviceError(f"{t.where}: SNMP error: {text}")
        if err_status and int(err_status) != 0:
            raise DeviceError(f"{t.where}: SNMP error {err_status.prettyPrint()} at varbind {err_index}")

    async def walk_columns(self, t: SnmpTarget, columns: list[str], max_repetitions: int = 20,
                           max_requests: int = 200, scalars: tuple[str, ...] = ()
                           ) -> tuple[dict[str, int | str | None], dict[str, dict[int, int | str | None]]]:
        """Walk several table columns together with GETBULK.

        ``scalars`` are read in the first request as non-repeaters (GETNEXT semantics: pass
        ``1.3.6.1.2.1.1.3`` to get ``sysUpTime.0``), saving a separate GET. Returns the scalars by
        the OID asked for, and column -> {row index: value}.
        """
        out: dict[str, dict[int, int | str | None]] = {c: {} for c in columns}
        found: dict[str, int | str | None] = {}
        cursor = {c: c for c in columns}
        engine, auth, transport = self._engine(t), self._auth(t), await self._transport(t)
        pending_scalars = list(scalars)
        for _ in range(max_requests):
            if not cursor and not pending_scalars:
                return found, out
            cols = list(cursor)
            nonrep = len(pending_scalars)
            request = [*[ObjectType(ObjectIdentity(o)) for o in pending_scalars],
                       *[ObjectType(ObjectIdentity(cursor[c])) for c in cols]]
            err_ind, err_status, err_index, var_binds = await bulk_cmd(
                engine, auth, transport, ContextData(), nonrep, max_repetitions, *request, lookupMib=False)
            if err_ind and t.version != "2c" and (t.host, t.port) in self._discovered:
                self._discovered.discard((t.host, t.port))  # once: a device that stays down costs no more
                if _forget_peer(engine, transport.transport_address):
                    log.info("%s did not answer; asking again with its SNMPv3 engine discovered afresh", t.where)
                    err_ind, err_status, err_index, var_binds = await bulk_cmd(
                        engine, auth, transport, ContextData(), nonrep, max_repetitions, *request, lookupMib=False)
            self._check(t, err_ind, err_status, err_index)
            if t.version != "2c":
                self._discovered.add((t.host, t.port))
            for asked, vb in zip(pending_scalars, var_binds[:nonrep], strict=False):
                oid = str(vb[0])
                found[asked] = _plain(vb[1]) if oid.startswith(asked + ".") else None
            pending_scalars = []
            var_binds = var_binds[nonrep:]
            if not cols:
                return found, out
            done: set[str] = set()
            progressed = False
            # repeaters come row by row: varbind k belongs to column k % n (a truncated response may
            # end mid-row; the columns it did not reach go on from their cursor next time)
            for k, vb in enumerate(var_binds):
                col = cols[k % len(cols)]
                if col in done:
                    continue
                oid, value = str(vb[0]), vb[1]
                if isinstance(value, _END) or not oid.startswith(col + "."):
                    done.add(col)
                    continue
                suffix = oid[len(col) + 1:]
                if "." in suffix or not suffix.isdigit():
                    done.add(col)
                    continue
                if _oid_key(oid) <= _oid_key(cursor[col]):
                    raise DeviceError(f"{t.where}: the device answered GETBULK with OID {oid}, not after "
                                      f"{cursor[col]} (an SNMP agent bug); its interface table cannot be read")
                out[col][int(suffix)] = _plain(value)
                cursor[col] = oid
                progressed = True
            if not progressed and not done:
                raise DeviceError(f"{t.where}: the device answered GETBULK without any table rows")
            for col in done:
                cursor.pop(col, None)
        raise DeviceError(f"{t.where}: interface table did not end after {max_requests} GETBULK requests")
