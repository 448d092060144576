"""Loads the city inventory (TOML), validates all of it, and reports every problem with its place.

Problems are collected, not raised one by one: an operator fixing a file sees the whole list,
each as ``inventory.toml:LINE devices[2] (core-rtr).snmp.community: …``. Credentials are never
inline: a credential field holds ``env:VAR`` or ``secret:NAME`` (looked up in the secrets file).
"""

from __future__ import annotations

import ipaddress
import os
import re
import stat
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from core.errors import ConfigError, SecretError
from core.units import parse_duration, parse_rate
from noc.model import (
    Agency,
    Allocation,
    BackupPolicy,
    Device,
    DeviceKind,
    InterfaceMapping,
    Inventory,
    NotifyChannel,
    SecretRef,
    Shaping,
    ShapingMode,
    SnmpAccess,
    SshAccess,
    Uplink,
    Vendor,
)

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
_REF_RE = re.compile(r"^(env|secret):([A-Za-z0-9_.-]{1,128})$")
T = TypeVar("T")


class _Locator:
    """Finds the line of a table entry or key in the TOML text (best effort, for messages)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self.headers: dict[str, list[int]] = {}
        for no, raw in enumerate(self.lines, 1):
            s = raw.strip()
            m = re.match(r"^\[\[\s*([A-Za-z0-9_.]+)\s*\]\]", s) or re.match(r"^\[\s*([A-Za-z0-9_.]+)\s*\]", s)
            if m:
                self.headers.setdefault(m.group(1), []).append(no)

    def line(self, table: str, index: int | None, key: str | None) -> int | None:
        starts = self.headers.get(table)
        if not starts:
            return None
        start = starts[index or 0] if (index or 0) < len(starts) else starts[-1]
        if key is None:
            return start
        for no in range(start + 1, len(self.lines) + 1):
            s = self.lines[no - 1].strip()
            if s.startswith("["):
                break
            if re.match(rf"^{re.escape(key)}\s*=", s):
                return no
        return start


class _Checker:
    """Collects problems while building the model."""

    def __init__(self, filename: str, text: str) -> None:
        self.filename = filename
        self.loc = _Locator(text)
        self.problems: list[str] = []

    def add(self, where: str, message: str, table: str = "", index: int | None = None, key: str | None = None) -> None:
        line = self.loc.line(table, index, key) if table else None
        prefix = f"{self.filename}:{line}" if line else self.filename
        self.problems.append(f"{prefix} {where}: {message}")

    def get(self, tbl: dict[str, Any], key: str, conv: Callable[[Any], T], where: str, table: str,
            index: int | None, default: Any = ..., ) -> T | None:
        if key not in tbl:
            if default is ...:
                self.add(where, f"'{key}' is required", table, index)
                return None
            return default  # type: ignore[no-any-return]
        try:
            return conv(tbl[key])
        except (ValueError, TypeError) as exc:
            self.add(f"{where}.{key}", str(exc), table, index, key)
            return None


def _ident(v: Any) -> str:
    if not isinstance(v, str) or not ID_RE.match(v):
        raise ValueError(f"{v!r} is not a valid id (lower-case letters, digits, '.', '_', '-'; at most 63)")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str):
        raise ValueError(f"{v!r} must be a string")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"{v!r} must be true or false")
    return v


def _port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
        raise ValueError(f"{v!r} is not a TCP/UDP port")
    return v


def _retries(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 10:
        raise ValueError(f"{v!r} must be a whole number from 0 to 10")
    return v


def _choice(*allowed: str) -> Callable[[Any], str]:
    def conv(v: Any) -> str:
        if not isinstance(v, str) or v.upper() not in allowed:
            raise ValueError(f"{v!r} is not one of {', '.join(allowed)}")
        return v.upper()
    return conv


def _str_list(v: Any) -> tuple[str, ...]:
    if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
        raise ValueError(f"{v!r} must be a list of strings")
    return tuple(v)


def secret_ref(v: Any) -> SecretRef:
    """Parse ``env:VAR`` / ``secret:NAME``; anything else is an inline credential and refused."""
    if isinstance(v, str):
        m = _REF_RE.match(v)
        if m:
            return SecretRef(m.group(1), m.group(2))
    raise ValueError("credentials must not be written inline; write \"env:VARIABLE\" or \"secret:NAME\" "
                     "(NAME in the secrets file)")


def _enum(cls: type[Any]) -> Callable[[Any], Any]:
    def conv(v: Any) -> Any:
        try:
            return cls(v)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in cls)
            raise ValueError(f"{v!r} is not one of {allowed}") from None
    return conv


def _tables(doc: dict[str, Any], key: str, chk: _Checker) -> list[dict[str, Any]]:
    val = doc.get(key, [])
    if not isinstance(val, list) or not all(isinstance(x, dict) for x in val):
        chk.add(key, f"must be an array of tables ([[{key}]])", key)
        return []
    return val


def _prefixes(v: Any) -> tuple[str, ...]:
    out = []
    for x in _str_list(v):
        try:
            net = ipaddress.ip_network(x, strict=True)
        except ValueError as exc:
            raise ValueError(f"{x!r} is not a network prefix like \"10.20.0.0/16\" ({exc})") from None
        if net.version != 4:
            raise ValueError(f"{x!r}: only IPv4 prefixes are shaped so far")
        out.append(str(net))
    return tuple(out)


def _label(kind: str, i: int, tbl: dict[str, Any]) -> str:
    ident = tbl.get("id") or tbl.get("agency")
    return f"{kind}[{i}]" + (f" ({ident})" if isinstance(ident, str) else "")


def parse_inventory(text: str, filename: str = "inventory.toml") -> Inventory:
    """Validate inventory TOML text; raise ConfigError listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{filename} is not valid TOML: {exc}") from exc
    chk = _Checker(filename, text)
    known = {"city", "uplinks", "agencies", "devices", "allocations", "backup_policies", "notify"}
    for k in doc:
        if k not in known:
            chk.add(k, f"unknown section; expected one of {', '.join(sorted(known))}", k)
    city_tbl = doc.get("city", {})
    if not isinstance(city_tbl, dict):
        chk.add("city", "must be a table [city]", "city")
        city_tbl = {}
    city = chk.get(city_tbl, "name", _text, "city", "city", None, default="") or ""
    secrets_file = chk.get(city_tbl, "secrets_file", _text, "city", "city", None, default=None)

    uplinks = []
    uplink_tables = _tables(doc, "uplinks", chk)
    for i, t in enumerate(uplink_tables):
        w = _label("uplinks", i, t)
        uid = chk.get(t, "id", _ident, w, "uplinks", i)
        down = chk.get(t, "down", parse_rate, w, "uplinks", i)
        up = chk.get(t, "up", parse_rate, w, "uplinks", i)
        if uid and down is not None and up is not None:
            uplinks.append(Uplink(uid, down, up, chk.get(t, "name", _text, w, "uplinks", i, default="") or ""))
    if not uplink_tables:
        chk.add("uplinks", "at least one [[uplinks]] with id, down and up is required")

    agencies = []
    for i, t in enumerate(_tables(doc, "agencies", chk)):
        w = _label("agencies", i, t)
        aid = chk.get(t, "id", _ident, w, "agencies", i)
        name = chk.get(t, "name", _text, w, "agencies", i)
        email = chk.get(t, "admin_email", _text, w, "agencies", i, default="") or ""
        prefixes = chk.get(t, "prefixes", _prefixes, w, "agencies", i, default=()) or ()
        if aid and name is not None:
            agencies.append(Agency(aid, name, email, prefixes))
    agency_ids = {a.id for a in agencies}
    _dupes(chk, "agencies", [a.id for a in agencies])

    devices = [d for i, t in enumerate(_tables(doc, "devices", chk))
               if (d := _device(chk, i, t, agency_ids)) is not None]
    _dupes(chk, "devices", [d.id for d in devices])

    uplink_ids = {u.id: u for u in uplinks}
    allocations = [a for i, t in enumerate(_tables(doc, "allocations", chk))
                   if (a := _allocation(chk, i, t, agency_ids, uplink_ids)) is not None]
    for u in uplinks:
        for direction in ("down", "up"):
            total = sum(getattr(a, f"guaranteed_{direction}") for a in allocations if a.uplink == u.id)
            cap = getattr(u, f"{direction}_bps")
            if total > cap:
                chk.add("allocations", f"guaranteed {direction} rates on uplink {u.id!r} add up to {total} bit/s, "
                        f"more than its capacity of {cap} bit/s", "allocations", 0)
    for i, d in enumerate(devices):
        if d.shaping is not None and d.shaping.uplink not in uplink_ids:
            chk.add(f"devices ({d.id}).shaping.uplink", f"uplink {d.shaping.uplink!r} is not defined in [[uplinks]]",
                    "devices", i, "shaping")
    device_ids = {d.id for d in devices}
    for i, d in enumerate(devices):
        if d.via is not None and d.via not in device_ids:
            chk.add(f"devices ({d.id}).via", f"device {d.via!r} is not defined in [[devices]]", "devices", i, "via")
        seen, hop = {d.id}, d.via
        while hop is not None and hop in device_ids and hop not in seen:
            seen.add(hop)
            hop = next(x.via for x in devices if x.id == hop)
        if hop is not None and hop in seen:
            chk.add(f"devices ({d.id}).via", "the via chain loops back on itself", "devices", i, "via")
    channels = [n for i, t in enumerate(_tables(doc, "notify", chk))
                if (n := _notify(chk, i, t, agency_ids)) is not None]
    _dupes(chk, "notify", [n.id for n in channels])
    policies = [p for i, t in enumerate(_tables(doc, "backup_policies", chk))
                if (p := _policy(chk, i, t, agency_ids, device_ids)) is not None]

    if chk.problems:
        raise ConfigError(f"the inventory {filename} has {len(chk.problems)} problem(s):", chk.problems)
    return Inventory(city, tuple(uplinks), tuple(agencies), tuple(devices), tuple(allocations), tuple(policies),
                     secrets_file, notify=tuple(channels), source=filename)


_NOTIFY_KEYS = {"webhook": {"url"}, "telegram": {"bot_token", "chat_id", "api_url"},
                "email": {"smtp_host", "smtp_port", "starttls", "username", "password", "sender", "to",
                          "to_agency_admin"}}


def _notify(chk: _Checker, i: int, t: dict[str, Any], agency_ids: set[str]) -> NotifyChannel | None:
    w, tb = _label("notify", i, t), "notify"
    nid = chk.get(t, "id", _ident, w, tb, i)
    kind = chk.get(t, "kind", _text, w, tb, i)
    if kind is not None and kind not in _NOTIFY_KEYS:
        chk.add(f"{w}.kind", f"{kind!r} is not one of webhook, telegram, email", tb, i, "kind")
        return None
    allowed = {"id", "kind", "agencies"} | (_NOTIFY_KEYS[kind] if kind else set())
    for k in t:
        if k not in allowed:
            chk.add(f"{w}.{k}", f"unknown key for a {kind} channel; expected one of {', '.join(sorted(allowed))}",
                    tb, i, k)
    agencies = chk.get(t, "agencies", _str_list, w, tb, i, default=("*",)) or ("*",)
    for a in agencies:
        if a != "*" and a not in agency_ids:
            chk.add(f"{w}.agencies", f"agency {a!r} is not defined in [[agencies]]", tb, i, "agencies")
    need = {"webhook": ("url",), "telegram": ("bot_token", "chat_id"), "email": ("smtp_host", "sender")}
    for k in need.get(kind or "", ()):
        if k not in t:
            chk.add(f"{w}.{k}", f"'{k}' is required for a {kind} channel", tb, i, k)
    if kind == "email" and not t.get("to") and not t.get("to_agency_admin"):
        chk.add(f"{w}.to", "an email channel needs to = [\"…\"] or to_agency_admin = true", tb, i, "to")
    if nid is None or kind is None:
        return None
    return NotifyChannel(
        nid, kind, tuple(agencies), url=chk.get(t, "url", _text, w, tb, i, default="") or "",
        bot_token=chk.get(t, "bot_token", secret_ref, w, tb, i, default=None),
        chat_id=str(t.get("chat_id", "")), api_url=chk.get(t, "api_url", _text, w, tb, i,
                                                           default="https://api.telegram.org") or "",
        smtp_host=chk.get(t, "smtp_host", _text, w, tb, i, default="") or "",
        smtp_port=chk.get(t, "smtp_port", _port, w, tb, i, default=587) or 587,
        starttls=bool(chk.get(t, "starttls", _bool, w, tb, i, default=True)),
        username=chk.get(t, "username", _text, w, tb, i, default="") or "",
        password=chk.get(t, "password", secret_ref, w, tb, i, default=None),
        sender=chk.get(t, "sender", _text, w, tb, i, default="") or "",
        to=chk.get(t, "to", _str_list, w, tb, i, default=()) or (),
        to_agency_admin=bool(chk.get(t, "to_agency_admin", _bool, w, tb, i, default=False)))


def _dupes(chk: _Checker, kind: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for i, x in enumerate(ids):
        if x in seen:
            chk.add(f"{kind}[{i}]", f"id {x!r} is used twice", kind, i, "id")
        seen.add(x)


def _device(chk: _Checker, i: int, t: dict[str, Any], agency_ids: set[str]) -> Device | None:
    w = _label("devices", i, t)
    allowed = {"id", "kind", "address", "agency", "agent", "vendor", "site", "snmp", "ssh", "interfaces",
               "count_interfaces", "shaping", "via"}
    for k in t:
        if k not in allowed:
            chk.add(f"{w}.{k}", f"unknown key; expected one of {', '.join(sorted(allowed))}", "devices", i, k)
    did = chk.get(t, "id", _ident, w, "devices", i)
    kind = chk.get(t, "kind", _enum(DeviceKind), w, "devices", i)
    address = chk.get(t, "address", _text, w, "devices", i)
    agency = chk.get(t, "agency", _text, w, "devices", i, default=None)
    if agency is not None and agency not in agency_ids:
        chk.add(f"{w}.agency", f"agency {agency!r} is not defined in [[agencies]]", "devices", i, "agency")
    agent = chk.get(t, "agent", _bool, w, "devices", i, default=False)
    vendor = chk.get(t, "vendor", _enum(Vendor), w, "devices", i, default=None)
    snmp = _snmp(chk, w, i, t["snmp"]) if "snmp" in t else None
    ssh = _ssh(chk, w, i, t["ssh"]) if "ssh" in t else None
    shaping = _shaping(chk, w, i, t["shaping"]) if "shaping" in t else None
    if shaping is not None and (vendor is None or ssh is None):
        chk.add(f"{w}.shaping", "a shaping router needs vendor = \"linux\"|\"mikrotik\"|\"cisco_ios\" and "
                "ssh = { username = …, … } so pantau can push its queues", "devices", i, "shaping")
    if shaping is not None and vendor is Vendor.CISCO_IOS and not shaping.wan:
        chk.add(f"{w}.shaping.wan", "Cisco IOS shapes upload on the uplink-facing port's output: give wan = \"…\"",
                "devices", i, "shaping")
    maps = []
    raw_ifaces = t.get("interfaces", [])
    if not isinstance(raw_ifaces, list):
        chk.add(f"{w}.interfaces", "must be a list of { name = …, agency = … }", "devices", i, "interfaces")
        raw_ifaces = []
    for j, m in enumerate(raw_ifaces):
        if not isinstance(m, dict) or not isinstance(m.get("name"), str) or not isinstance(m.get("agency"), str):
            chk.add(f"{w}.interfaces[{j}]", "must be { name = \"IFACE\", agency = \"AGENCY\" }", "devices", i,
                    "interfaces")
            continue
        if m["agency"] not in agency_ids:
            chk.add(f"{w}.interfaces[{j}]", f"agency {m['agency']!r} is not defined in [[agencies]]", "devices",
                    i, "interfaces")
        maps.append(InterfaceMapping(m["name"], m["agency"]))
    count = chk.get(t, "count_interfaces", _str_list, w, "devices", i, default=None)
    if agent and agency is None and not maps:
        chk.add(f"{w}.agent", "a device with an agent must belong to an agency (agency = …) or map its "
                "interfaces to agencies (interfaces = [{ name = …, agency = … }])", "devices", i, "agent")
    if did is None or kind is None or address is None:
        return None
    return Device(did, kind, address, agency, bool(agent), vendor,
                  chk.get(t, "site", _text, w, "devices", i, default="") or "", snmp, ssh, tuple(maps), count,
                  shaping, chk.get(t, "via", _ident, w, "devices", i, default=None))


def _sub(chk: _Checker, w: str, i: int, key: str, v: Any) -> dict[str, Any] | None:
    if not isinstance(v, dict):
        chk.add(f"{w}.{key}", "must be a table", "devices", i, key)
        return None
    return v


def _snmp(chk: _Checker, w: str, i: int, raw: Any) -> SnmpAccess | None:
    t = _sub(chk, w, i, "snmp", raw)
    if t is None:
        return None
    w = f"{w}.snmp"
    allowed = {"version", "port", "community", "user", "auth_key", "priv_key", "auth_protocol", "priv_protocol",
               "interval", "timeout", "retries"}
    for k in t:
        if k not in allowed:
            chk.add(f"{w}.{k}", f"unknown key; expected one of {', '.join(sorted(allowed))}", "devices", i, "snmp")
    version = chk.get(t, "version", _text, w, "devices", i, default="2c")
    port = chk.get(t, "port", _port, w, "devices", i, default=161) or 161
    interval = chk.get(t, "interval", parse_duration, w, "devices", i, default=60.0) or 60.0
    timeout = chk.get(t, "timeout", parse_duration, w, "devices", i, default=2.0) or 2.0
    retries = chk.get(t, "retries", _retries, w, "devices", i, default=1)
    timing: dict[str, Any] = {"interval_s": interval, "timeout_s": timeout,
                              "retries": 1 if retries is None else retries}
    if interval < 1:
        chk.add(f"{w}.interval", "must be at least 1s", "devices", i, "snmp")
    if version == "2c":
        community = chk.get(t, "community", secret_ref, w, "devices", i)
        return SnmpAccess("2c", port, community=community, **timing) if community else None
    if version == "3":
        user = chk.get(t, "user", _text, w, "devices", i)
        auth = chk.get(t, "auth_key", secret_ref, w, "devices", i)
        priv = chk.get(t, "priv_key", secret_ref, w, "devices", i)
        aproto = chk.get(t, "auth_protocol", _choice("SHA", "SHA256", "MD5"), w, "devices", i, default="SHA")
        pproto = chk.get(t, "priv_protocol", _choice("AES", "AES128", "AES256", "DES"), w, "devices", i,
                         default="AES")
        if user and auth and priv and aproto and pproto:
            return SnmpAccess("3", port, user=user, auth_key=auth, priv_key=priv, auth_protocol=aproto,
                              priv_protocol=pproto, **timing)
        return None
    chk.add(f"{w}.version", f"{version!r} is not supported; use \"2c\" or \"3\" (authPriv)", "devices", i, "snmp")
    return None


def _shaping(chk: _Checker, w: str, i: int, raw: Any) -> Shaping | None:
    t = _sub(chk, w, i, "shaping", raw)
    if t is None:
        return None
    w = f"{w}.shaping"
    allowed = {"uplink", "lan", "wan", "mode"}
    for k in t:
        if k not in allowed:
            chk.add(f"{w}.{k}", f"unknown key; expected one of {', '.join(sorted(allowed))}", "devices", i, "shaping")
    uplink = chk.get(t, "uplink", _ident, w, "devices", i)
    lan = chk.get(t, "lan", _ifname, w, "devices", i)
    wan = chk.get(t, "wan", _ifname, w, "devices", i, default="") or ""
    mode = chk.get(t, "mode", _enum(ShapingMode), w, "devices", i, default=ShapingMode.ENFORCE)
    if uplink is None or lan is None:
        return None
    return Shaping(uplink, lan, wan, mode or ShapingMode.ENFORCE)


def _ifname(v: Any) -> str:
    if not isinstance(v, str) or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_./:-]{0,62}", v):
        raise ValueError(f"{v!r} is not an interface name")
    return v


def _ssh(chk: _Checker, w: str, i: int, raw: Any) -> SshAccess | None:
    t = _sub(chk, w, i, "ssh", raw)
    if t is None:
        return None
    w = f"{w}.ssh"
    user = chk.get(t, "username", _text, w, "devices", i)
    pw = chk.get(t, "password", secret_ref, w, "devices", i, default=None)
    key = chk.get(t, "key_file", _text, w, "devices", i, default="") or ""
    if pw is None and not key and "password" not in t:
        chk.add(w, "give password = \"env:…\"/\"secret:…\" or key_file = \"/path\"", "devices", i, "ssh")
    port = chk.get(t, "port", _port, w, "devices", i, default=22) or 22
    return SshAccess(user, port, pw, key) if user else None


def _allocation(chk: _Checker, i: int, t: dict[str, Any], agency_ids: set[str],
                uplinks: dict[str, Uplink]) -> Allocation | None:
    w = _label("allocations", i, t)
    agency = chk.get(t, "agency", _text, w, "allocations", i)
    uplink = chk.get(t, "uplink", _text, w, "allocations", i)
    vals = {k: chk.get(t, k, parse_rate, w, "allocations", i)
            for k in ("guaranteed_down", "ceiling_down", "guaranteed_up", "ceiling_up")}
    vals.update({k: chk.get(t, k, parse_rate, w, "allocations", i, default=0) for k in ("floor_down", "floor_up")})
    if agency is not None and agency not in agency_ids:
        chk.add(f"{w}.agency", f"agency {agency!r} is not defined in [[agencies]]", "allocations", i, "agency")
    if uplink is not None and uplink not in uplinks:
        chk.add(f"{w}.uplink", f"uplink {uplink!r} is not defined in [[uplinks]]", "allocations", i, "uplink")
    if agency is None or uplink not in uplinks or any(v is None for v in vals.values()):
        return None
    ul = uplinks[uplink]
    ok = True
    for d in ("down", "up"):
        g, c, cap = vals[f"guaranteed_{d}"], vals[f"ceiling_{d}"], getattr(ul, f"{d}_bps")
        floor = vals[f"floor_{d}"] or 0
        assert g is not None and c is not None
        if g < floor:
            chk.add(w, f"guaranteed_{d} ({g} bit/s) is below the agency's floor_{d} ({floor} bit/s)", "allocations",
                    i, f"guaranteed_{d}")
            ok = False
        if g > c:
            chk.add(w, f"guaranteed_{d} ({g} bit/s) is above ceiling_{d} ({c} bit/s)", "allocations", i,
                    f"guaranteed_{d}")
            ok = False
        if c > cap:
            chk.add(w, f"ceiling_{d} ({c} bit/s) is above uplink {uplink!r}'s capacity ({cap} bit/s)",
                    "allocations", i, f"ceiling_{d}")
            ok = False
    if not ok:
        return None
    return Allocation(agency, uplink, **{k: int(v or 0) for k, v in vals.items()})


def _policy(
    chk: _Checker, i: int, t: dict[str, Any], agency_ids: set[str], device_ids: set[str]
) -> BackupPolicy | None:
    w = _label("backup_policies", i, t)
    tb = "backup_policies"
    for k in t:
        if k not in _POLICY_KEYS:
            chk.add(f"{w}.{k}", f"unknown key; expected one of {', '.join(sorted(_POLICY_KEYS))}", tb, i, k)
    agency = chk.get(t, "agency", _text, w, tb, i)
    source = chk.get(t, "source", _text, w, tb, i)
    paths = chk.get(t, "paths", _str_list, w, tb, i)
    schedule = chk.get(t, "schedule", _text, w, tb, i)
    rpo = chk.get(t, "rpo", parse_duration, w, tb, i)
    pd = chk.get(t, "pusat_data_repo", _text, w, tb, i)
    dr = chk.get(t, "dr_repo", _text, w, tb, i)
    pw = chk.get(t, "password", secret_ref, w, tb, i)
    verify = chk.get(t, "verify_every", parse_duration, w, tb, i, default=86400.0)
    drill = chk.get(t, "drill_every", parse_duration, w, tb, i, default=7 * 86400.0)
    dr_pw = chk.get(t, "dr_password", secret_ref, w, tb, i, default=None)
    ssh_key = chk.get(t, "ssh_key", _text, w, tb, i, default=None)
    known_hosts = chk.get(t, "known_hosts", _text, w, tb, i, default=None)
    cycle = chk.get(t, "check_cycle", _small_count, w, tb, i, default=7)
    drill_files = chk.get(t, "drill_files", _small_count, w, tb, i, default=3)
    dr_within = chk.get(t, "dr_within", parse_duration, w, tb, i, default=None)
    retention = t.get("retention", {})
    if (not isinstance(retention, dict) or not all(isinstance(v, int) and v >= 0 for v in retention.values())
            or not set(retention) <= _RETENTION_KEYS):
        chk.add(f"{w}.retention", "must be a table like { daily = 7, weekly = 4, monthly = 6 } "
                "(keys: last, hourly, daily, weekly, monthly, yearly)", tb, i, "retention")
        retention = {}
    if agency is not None and agency not in agency_ids:
        chk.add(f"{w}.agency", f"agency {agency!r} is not defined in [[agencies]]", tb, i, "agency")
    if source is not None and source not in device_ids:
        chk.add(f"{w}.source", f"device {source!r} is not defined in [[devices]]", tb, i, "source")
    if paths is not None and not paths:
        chk.add(f"{w}.paths", "at least one path to back up is required", tb, i, "paths")
    if None in (agency, source, paths, schedule, rpo, pd, dr, pw) or pd == dr:
        if pd is not None and pd == dr:
            chk.add(w, "the Pusat Data and DR repositories must differ", tb, i, "dr_repo")
        return None
    assert agency and source and paths and schedule and rpo and pd and dr and pw
    return BackupPolicy(agency, source, paths, schedule, rpo, pd, dr, pw, dict(retention),
                        verify or 86400.0, drill or 7 * 86400.0, dr_pw, ssh_key, known_hosts, cycle or 7,
                        drill_files or 3, dr_within)


_POLICY_KEYS = {"agency", "source", "paths", "schedule", "rpo", "pusat_data_repo", "dr_repo", "password",
                "dr_password", "retention", "verify_every", "drill_every", "ssh_key", "known_hosts", "check_cycle",
                "drill_files", "dr_within"}
_RETENTION_KEYS = {"last", "hourly", "daily", "weekly", "monthly", "yearly"}


def _small_count(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 1000:
        raise ValueError(f"{v!r} must be a whole number from 1 to 1000")
    return v


def load_inventory(path: Path) -> Inventory:
    """Read and validate an inventory file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the inventory {path}: {exc.strerror}") from exc
    return parse_inventory(text, str(path))


def secrets_path(inventory: Path, inv: Inventory) -> Path | None:
    """The inventory's secrets file, relative to the inventory file unless absolute."""
    if not inv.secrets_file:
        return None
    p = Path(inv.secrets_file)
    return p if p.is_absolute() else inventory.parent / p


class Secrets:
    """Resolves :class:`SecretRef` values from the environment or a TOML secrets file."""

    def __init__(self, path: Path | None = None, environ: dict[str, str] | None = None) -> None:
        self.path = path
        self.environ = os.environ if environ is None else environ
        self._file: dict[str, Any] = {}
        if path is not None and path.exists():
            mode = path.stat().st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise SecretError(f"the secrets file {path} is readable by other users; run: chmod 600 {path}")
            try:
                self._file = tomllib.loads(path.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise SecretError(f"cannot read the secrets file {path}: {exc}") from exc

    def resolve(self, ref: SecretRef, purpose: str) -> str:
        """The secret's value; ``purpose`` names what needs it, for the error message."""
        if ref.kind == "env":
            value = self.environ.get(ref.name)
            if not value:
                raise SecretError(f"{purpose} needs the environment variable {ref.name}, which is not set")
            return value
        value = self._file.get(ref.name)
        if not isinstance(value, str) or not value:
            where = self.path or "(no secrets file configured: set city.secrets_file)"
            raise SecretError(f"{purpose} needs secret {ref.name!r}, which is missing from {where}")
        return value
