"""Real enforcement: a Linux router (sshd + tc) in a namespace between the ISP and two agencies.

`pantau bw apply` pushes the division over SSH; iperf3 through the router measures each agency at
its ceiling in both directions; `pantau bw move` shifts the guarantee and the new shares are
measured under contention; a hand edit is seen by `bw plan` and repaired by the NOC's reconciler;
an SSH session cut during a commit leaves the router on its previous queues.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.errors import CommitError
from noc import procs
from noc.bandwidth.alloc import Rates
from noc.bandwidth.drivers import DRIVERS
from noc.bandwidth.drivers.base import netmiko_session
from noc.bandwidth.drivers.linux import LinuxTcDriver
from noc.bandwidth.shaping import desired_for
from noc.inventory import parse_inventory
from noc.model import Vendor
from tests.conftest import pantau, wait_for
from tests.netns import require_netns
from tests.routers import RouterLab, lab_inventory, router_lab

pytestmark = pytest.mark.e2e


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[RouterLab]:
    with router_lab(tmp_path, 150) as lab:
        yield lab


def _city(lab: RouterLab, tmp: Path, mode: str = "enforce") -> tuple[str, str]:
    inv = tmp / "city.toml"
    inv.write_text(lab_inventory(lab, mode=mode, down="50 Mbit", up="50 Mbit"))
    return str(inv), str(tmp / "noc.sqlite")


def within(measured: float, expected: float, tol: float = 0.10) -> bool:
    return abs(measured - expected) <= expected * tol


def test_apply_enforces_ceilings_both_ways_and_move_shifts_the_shares(lab: RouterLab, tmp_path: Path) -> None:
    inv, db = _city(lab, tmp_path)
    plan = pantau("bw", "plan", "--inventory", inv, "--db", db)
    assert "+ dinkes: missing on the router" in plan.stdout
    out = pantau("bw", "apply", "--inventory", inv, "--db", db, "--operator", "budi", "--json")
    [rep] = json.loads(out.stdout)
    assert rep["pushed"] and rep["verified"] and rep["error"] is None, rep
    assert "in sync" in pantau("bw", "plan", "--inventory", inv, "--db", db).stdout

    # each agency alone reaches its ceiling, and no more, in both directions (within 10%)
    for which, down, up in (("a", 40, 20), ("b", 30, 15)):
        got_down, got_up = lab.iperf(which, reverse=True), lab.iperf(which, reverse=False)
        assert within(got_down, down), f"agency {which} download {got_down:.1f} Mbit/s, ceiling {down}"
        assert within(got_up, up), f"agency {which} upload {got_up:.1f} Mbit/s, ceiling {up}"

    # both at once share the 50 Mbit/s uplink; each gets at least its guarantee (20/20)
    a0, b0 = lab.iperf_both(reverse=True)
    assert a0 >= 20 * 0.9 and b0 >= 20 * 0.9 and a0 + b0 <= 50 * 1.05, (a0, b0)

    moved = pantau("bw", "move", "10M", "--from", "disdik", "--to", "dinkes", "--reason", "memo 7/2026 streaming",
                   "--inventory", inv, "--db", db, "--operator", "budi")
    assert "dinkes" in moved.stdout and "30.0 Mbit/s" in moved.stdout
    pantau("bw", "apply", "--inventory", inv, "--db", db, "--operator", "budi")
    a1, b1 = lab.iperf_both(reverse=True)
    assert a1 >= 30 * 0.9 and b1 >= 10 * 0.9 and a1 + b1 <= 50 * 1.05, (a1, b1)
    assert a1 > a0, f"dinkes should gain from the move: {a0:.1f} -> {a1:.1f} Mbit/s"

    # a temporary upload move past dinkes's ceiling lifts the ceiling with it: 20 -> 25 Mbit/s alone
    pantau("bw", "move", "10M", "--direction", "up", "--from", "disdik", "--to", "dinkes", "--until", "1h",
           "--reason", "city event live stream", "--inventory", inv, "--db", db, "--operator", "budi")
    pantau("bw", "apply", "--inventory", inv, "--db", db, "--operator", "budi")
    got_up = lab.iperf("a", reverse=False)
    assert within(got_up, 25), f"dinkes upload after the move {got_up:.1f} Mbit/s, new ceiling 25"

    hist = pantau("bw", "history", "dinkes", "--db", db, "--json")
    actions = [e["action"] for e in json.loads(hist.stdout)]
    assert actions == ["bw.seed", "bw.move", "bw.move"]
    assert "hash chain verified" in pantau("audit", "verify", "--db", db).stdout


def test_refused_change_names_the_numbers_and_changes_nothing(lab: RouterLab, tmp_path: Path) -> None:
    inv, db = _city(lab, tmp_path)
    out = pantau("bw", "move", "20M", "--from", "disdik", "--to", "dinkes", "--reason", "x", "--inventory", inv,
                 "--db", db, check=False)
    assert out.returncode == 8
    assert "disdik" in out.stderr and "floor of 5.0 Mbit/s" in out.stderr and "nothing was changed" in out.stderr
    out = pantau("bw", "set", "dinkes", "--guaranteed", "40M", "--reason", "x", "--inventory", inv, "--db", db,
                 check=False)
    assert out.returncode == 8 and "add up to 60.0 Mbit/s, more than its capacity of 50.0 Mbit/s" in out.stderr
    shown = json.loads(pantau("bw", "show", "--inventory", inv, "--db", db, "--json").stdout)
    dinkes = next(r for r in shown["agencies"] if r["agency"] == "dinkes" and r["direction"] == "down")
    assert dinkes["guaranteed_bps"] == 20_000_000


def _squeeze_dinkes_by_hand(lab: RouterLab) -> None:
    """What an engineer in Winbox-style haste does: dinkes's class cut to 5 Mbit/s behind pantau's back."""
    lab.tc("class", "change", "dev", lab.lan_if, "parent", "1:1", "classid", "1:10", "htb", "rate", "5mbit", "ceil",
           "5mbit")


def _noc_until(inv: str, db: str, log: Path, every: str, line: str, what: str) -> None:
    """Run the NOC service until its log shows ``line``."""
    noc = procs.start_noc(Path(inv), Path(db), procs.free_port(), log, extra=["--reconcile-every", every])
    try:
        wait_for(lambda: line in log.read_text(), 30, what)
    finally:
        procs.stop(noc)


def test_hand_edit_is_planned_as_drift_and_repaired_by_the_reconciler(lab: RouterLab, tmp_path: Path) -> None:
    inv, db = _city(lab, tmp_path)
    pantau("bw", "apply", "--inventory", inv, "--db", db)
    _squeeze_dinkes_by_hand(lab)
    plan = pantau("bw", "plan", "--inventory", inv, "--db", db)
    assert "~ dinkes c_down: router has 5.0 Mbit/s, should be 40.0 Mbit/s" in plan.stdout

    _noc_until(inv, db, tmp_path / "noc.log", "2s", "rtr: repaired 2 difference(s)", "the reconciler's repair")
    assert "ceil 40Mbit" in lab.tc("class", "show", "dev", lab.lan_if, "classid", "1:10")
    audit = pantau("audit", "list", "--db", db).stdout
    assert "bw.push" in audit and "pantau-reconciler" in audit


def test_observe_mode_reports_drift_without_repairing(lab: RouterLab, tmp_path: Path) -> None:
    inv, db = _city(lab, tmp_path, mode="observe")
    pantau("bw", "apply", "--inventory", inv, "--db", db)  # an operator's apply pushes even in observe mode
    _squeeze_dinkes_by_hand(lab)
    _noc_until(inv, db, tmp_path / "noc.log", "1s", "drifted from the division (observe mode", "the drift warning")
    assert "ceil 5Mbit" in lab.tc("class", "show", "dev", lab.lan_if, "classid", "1:10")


def test_ssh_cut_during_commit_keeps_the_previous_queues(lab: RouterLab, tmp_path: Path) -> None:
    inv = parse_inventory(lab_inventory(lab, down="50 Mbit", up="50 Mbit"))
    rtr = inv.device("rtr")
    assert rtr is not None
    rates = {a.agency: Rates(a.guaranteed_down, a.ceiling_down, a.guaranteed_up, a.ceiling_up)
             for a in inv.allocations}
    _, device_type = DRIVERS[Vendor.LINUX]

    def connect() -> object:
        return netmiko_session(rtr, device_type, None)

    with LinuxTcDriver(rtr, connect) as drv:  # type: ignore[arg-type]
        drv.load_candidate(desired_for(rtr, inv, rates))
        assert drv.commit().verified
        before = lab.tc("class", "show", "dev", lab.lan_if)

    bigger = {**rates, "dinkes": Rates(25_000_000, 45_000_000, 15_000_000, 20_000_000)}
    cut = LinuxTcDriver(rtr, connect, on_stage=lambda stage: lab.cut_sessions())  # type: ignore[arg-type]
    with cut, pytest.raises(CommitError) as err:
        cut.load_candidate(desired_for(rtr, inv, bigger))
        cut.commit()
    assert err.value.kept_previous
    assert "keeps its previous configuration" in str(err.value)
    assert lab.tc("class", "show", "dev", lab.lan_if) == before
    # the next session repairs it normally
    with LinuxTcDriver(rtr, connect) as drv:  # type: ignore[arg-type]
        drv.load_candidate(desired_for(rtr, inv, bigger))
        assert drv.commit().verified
    assert "ceil 45Mbit" in lab.tc("class", "show", "dev", lab.lan_if, "classid", "1:10")


def test_a_lab_left_by_a_killed_run_is_removed_not_answering_for_the_new_one(tmp_path: Path) -> None:
    """A demo SIGKILLed mid-run leaves its namespaces; the next lab on the same subnet would route
    to the old router, whose sshd refuses the new key ("refused SSH login"). It is removed first."""
    require_netns()
    # what a killed run leaves: its router namespace and the host's end of the management link
    for cmd in (["netns", "add", "pr-dead00"],
                ["link", "add", "pmdead00", "type", "veth", "peer", "name", "mgmt0", "netns", "pr-dead00"],
                ["addr", "add", "10.99.152.1/30", "dev", "pmdead00"], ["link", "set", "pmdead00", "up"]):
        subprocess.run(["ip", *cmd], check=True)
    with router_lab(tmp_path, 152) as lab:
        assert "pr-dead00" not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        addrs = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True).stdout
        assert addrs.count("inet 10.99.152.1/30") == 1
        login = subprocess.run(["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o",
                                "UserKnownHostsFile=/dev/null", "-i", str(lab.key_file), f"root@{lab.mgmt_ip}",
                                "true"], capture_output=True, text=True, timeout=60)
        assert login.returncode == 0, login.stderr
