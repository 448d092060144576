"""The allocation algebra: an uplink's division among agencies, its invariants, and the changes to it.

Pure: a :class:`Book` is the whole desired state (uplink capacities, each agency's base rates and
floor, temporary loans); every operation returns a new book or raises :class:`AllocationError`
naming the agency and the numbers. A temporary ``move`` is a :class:`Loan` on top of the base
rates; it ends by itself at its ``until``. Because loans end one by one, a change is accepted only
if the division keeps every invariant now *and* at every future moment a loan ends.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

from core.errors import AllocationError
from core.units import format_rate

DIRECTIONS = ("down", "up")


@dataclass(frozen=True)
class Rates:
    """HTB semantics per direction: ``g`` is guaranteed, ``c`` the ceiling an agency may borrow up to."""

    g_down: int
    c_down: int
    g_up: int
    c_up: int

    def g(self, d: str) -> int:
        return self.g_down if d == "down" else self.g_up

    def c(self, d: str) -> int:
        return self.c_down if d == "down" else self.c_up

    def with_dir(self, d: str, g: int | None = None, c: int | None = None) -> Rates:
        g = self.g(d) if g is None else g
        c = self.c(d) if c is None else c
        return replace(self, g_down=g, c_down=c) if d == "down" else replace(self, g_up=g, c_up=c)

    def as_dict(self) -> dict[str, int]:
        return {"guaranteed_down": self.g_down, "ceiling_down": self.c_down,
                "guaranteed_up": self.g_up, "ceiling_up": self.c_up}


@dataclass(frozen=True)
class Loan:
    """A temporary move of guaranteed rate from ``src`` to ``dst`` until ``until`` (epoch seconds).

    ``ceil_raise`` is how far ``dst``'s ceiling was lifted so it stays at or above its new guarantee.
    """

    id: int
    src: str
    dst: str
    direction: str
    amount: int
    ceil_raise: int
    until: float

    def delta(self, agency: str) -> tuple[int, int]:
        """(guaranteed, ceiling) change this loan makes to ``agency`` in its direction."""
        if agency == self.src:
            return -self.amount, 0
        if agency == self.dst:
            return self.amount, self.ceil_raise
        return 0, 0


@dataclass(frozen=True)
class Book:
    """The desired division: which uplink each agency uses, base rates, floors and active loans."""

    capacity: dict[str, tuple[int, int]]  # uplink -> (down, up) bit/s
    uplink_of: dict[str, str]  # agency -> uplink
    base: dict[str, Rates]  # agency -> rates without loans
    floors: dict[str, tuple[int, int]]  # agency -> (down, up) floor under its guaranteed rate
    loans: tuple[Loan, ...] = ()

    def effective(self, at: float) -> dict[str, Rates]:
        """Each agency's rates with the loans still running at ``at``."""
        out = dict(self.base)
        for loan in self.loans:
            if loan.until > at:
                for agency in (loan.src, loan.dst):
                    dg, dc = loan.delta(agency)
                    r = out[agency]
                    d = loan.direction
                    out[agency] = r.with_dir(d, r.g(d) + dg, r.c(d) + dc)
        return out

    def floor(self, agency: str, d: str) -> int:
        f = self.floors.get(agency, (0, 0))
        return f[0] if d == "down" else f[1]

    def cap(self, uplink: str, d: str) -> int:
        c = self.capacity[uplink]
        return c[0] if d == "down" else c[1]


def violations_at(book: Book, at: float) -> list[str]:
    """Every invariant the division breaks at time ``at``, each naming the agency and the numbers."""
    eff = book.effective(at)
    problems = []
    for d in DIRECTIONS:
        for uplink in book.capacity:
            cap = book.cap(uplink, d)
            members = sorted(a for a, u in book.uplink_of.items() if u == uplink and a in eff)
            total = sum(eff[a].g(d) for a in members)
            if total > cap:
                parts = ", ".join(f"{a} {format_rate(eff[a].g(d))}" for a in members)
                problems.append(f"guaranteed {d} rates on uplink {uplink} add up to {format_rate(total)}, more than "
                                f"its capacity of {format_rate(cap)} ({parts})")
        for agency in sorted(eff):
            r, uplink = eff[agency], book.uplink_of[agency]
            g, c, cap, floor = r.g(d), r.c(d), book.cap(uplink, d), book.floor(agency, d)
            if g < floor:
                problems.append(f"{agency}: guaranteed {d} {format_rate(g)} is below its floor of {format_rate(floor)}")
            if g > c:
                problems.append(f"{agency}: guaranteed {d} {format_rate(g)} is above its ceiling {format_rate(c)}")
            if c > cap:
                problems.append(f"{agency}: ceiling {d} {format_rate(c)} is above uplink {uplink}'s capacity "
                                f"{format_rate(cap)}")
            if g < 0:
                problems.append(f"{agency}: guaranteed {d} would be negative ({g} bit/s)")
    return problems


def violations(book: Book, now: float) -> list[str]:
    """Invariants broken now or at any moment a running loan ends (each problem once, with its time)."""
    seen: list[str] = []
    moments = [now, *sorted({loan.until for loan in book.loans if loan.until > now})]
    for at in moments:
        for p in violations_at(book, at):
            text = p if at == now else f"{p} (once the loan ending at {_when(at)} reverts)"
            if text not in seen:
                seen.append(text)
    return seen


def _when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))


def _accept(book: Book, now: float, what: str) -> Book:
    problems = violations(book, now)
    if problems:
        raise AllocationError(f"refused: {what} would break the division of the uplink; nothing was changed",
                              problems)
    return book


def _known(book: Book, *agencies: str) -> None:
    for a in agencies:
        if a not in book.base:
            known = ", ".join(sorted(book.base)) or "none"
            raise AllocationError(f"agency {a!r} has no allocation (agencies with one: {known})")


def set_rates(book: Book, agency: str, rates: Rates, now: float) -> Book:
    """Replace ``agency``'s base rates (running loans stay on top of them)."""
    _known(book, agency)
    new = replace(book, base={**book.base, agency: rates})
    return _accept(new, now, f"setting {agency} to {describe(rates)}")


def set_many(book: Book, rates: dict[str, Rates], now: float) -> Book:
    """Replace several agencies' base rates at once (a reallocation), all or none."""
    _known(book, *rates)
    return _accept(replace(book, base={**book.base, **rates}), now, "this reallocation")


def move(book: Book, amount: int, src: str, dst: str, direction: str, now: float,
         until: float | None = None, loan_id: int = 0) -> Book:
    """Move ``amount`` of guaranteed rate from ``src`` to ``dst`` in one direction, both or neither.

    ``dst``'s ceiling is lifted to its new guarantee if it was below. With ``until`` the move is a
    loan that reverts by itself; without, it changes both agencies' base rates.
    """
    _known(book, src, dst)
    if src == dst:
        raise AllocationError(f"moving bandwidth from {src} to itself changes nothing")
    if amount <= 0:
        raise AllocationError(f"the amount to move must be positive, not {format_rate(amount)}")
    if direction not in DIRECTIONS:
        raise AllocationError(f"direction must be 'down' or 'up', not {direction!r}")
    if book.uplink_of[src] != book.uplink_of[dst]:
        raise AllocationError(f"{src} is on uplink {book.uplink_of[src]} and {dst} on {book.uplink_of[dst]}: "
                              "bandwidth moves only between agencies of one uplink")
    eff = book.effective(now)
    what = f"moving {format_rate(amount)} {direction} from {src} to {dst}"
    if eff[src].g(direction) - amount < book.floor(src, direction):
        raise AllocationError(f"refused: {what} would leave {src} {format_rate(eff[src].g(direction) - amount)} "
                              f"guaranteed, below its floor of {format_rate(book.floor(src, direction))} "
                              f"(it has {format_rate(eff[src].g(direction))} now); nothing was changed")
    new_g = eff[dst].g(direction) + amount
    raise_c = max(0, new_g - eff[dst].c(direction))
    if until is not None:
        if until <= now:
            raise AllocationError(f"--until {_when(until)} is already past")
        loan = Loan(loan_id, src, dst, direction, amount, raise_c, until)
        return _accept(replace(book, loans=(*book.loans, loan)), now, what)
    base = dict(book.base)
    s, t = base[src], base[dst]
    base[src] = s.with_dir(direction, s.g(direction) - amount)
    base[dst] = t.with_dir(direction, t.g(direction) + amount, t.c(direction) + raise_c)
    return _accept(replace(book, base=base), now, what)


def expire(book: Book, now: float) -> tuple[Book, list[Loan]]:
    """Drop the loans that have ended by ``now``; the rates revert to what is left."""
    ended = [loan for loan in book.loans if loan.until <= now]
    if not ended:
        return book, []
    return replace(book, loans=tuple(loan for loan in book.loans if loan.until > now)), ended


def describe(r: Rates) -> str:
    return (f"down {format_rate(r.g_down)} guaranteed / {format_rate(r.c_down)} ceiling, "
            f"up {format_rate(r.g_up)} / {format_rate(r.c_up)}")
