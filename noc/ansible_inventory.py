"""The city inventory as an Ansible inventory: one source of truth for what runs where.

Agency servers with an agent become ``pantau_agents`` (with their backup job when a backup policy
names them as its source); MikroTik and Cisco devices become ``pantau_routers`` with their
network_cli settings. Secrets are never copied: tokens and passwords are Jinja references into
Ansible Vault variables (``vault_pantau_agent_tokens``, ``vault_pantau_backup_passwords``,
``vault_router_snmp_*``) that the operator keeps encrypted.
"""

from __future__ import annotations

import json
from typing import Any

from noc.model import DeviceKind, Inventory, Vendor

NETWORK_OS = {Vendor.MIKROTIK: "community.routeros.routeros", Vendor.CISCO_IOS: "cisco.ios.ios"}


def ansible_inventory(inv: Inventory, noc_url: str) -> dict[str, Any]:
    agents: dict[str, Any] = {}
    policies = {p.source: p for p in inv.backup_policies}
    for d in inv.devices:
        if not d.agent:
            continue
        host: dict[str, Any] = {"ansible_host": d.address, "pantau_agent_id": d.id,
                                "pantau_agent_agency": d.agency or "",
                                "pantau_agent_token": f"{{{{ vault_pantau_agent_tokens['{d.id}'] }}}}"}
        p = policies.get(d.id)
        if p is not None:
            host.update({
                "pantau_agent_backup_repo": p.pusat_data_repo, "pantau_agent_backup_paths": list(p.paths),
                "pantau_agent_backup_retention": dict(p.retention), "pantau_agent_backup_schedule": p.schedule,
                "pantau_agent_backup_password": f"{{{{ vault_pantau_backup_passwords['{p.agency}'] }}}}",
            })
        agents[d.id] = host
    routers: dict[str, Any] = {}
    for d in inv.devices:
        if d.kind == DeviceKind.SERVER or d.vendor not in NETWORK_OS:
            continue
        host = {"ansible_host": d.address, "ansible_connection": "ansible.netcommon.network_cli",
                "ansible_network_os": NETWORK_OS[d.vendor]}
        if d.ssh is not None:
            host["ansible_user"] = d.ssh.username
            if d.ssh.port != 22:
                host["ansible_port"] = d.ssh.port
        if d.snmp is not None and d.snmp.user:
            host["router_snmp_user"] = d.snmp.user
        routers[d.id] = host
    return {"all": {"children": {
        "pantau_agents": {"vars": {"pantau_agent_noc_url": noc_url}, "hosts": agents},
        "pantau_routers": {"vars": {"router_snmp_auth_key": "{{ vault_router_snmp_auth_key }}",
                                    "router_snmp_priv_key": "{{ vault_router_snmp_priv_key }}"},
                           "hosts": routers},
    }}}


def to_yaml(data: Any, indent: int = 0) -> str:
    """Block-style YAML for dicts, flow style for lists and scalars (JSON scalars are valid YAML)."""
    pad = "  " * indent
    if isinstance(data, dict):
        if not data:
            return "{}"
        lines = []
        for k, v in data.items():
            key = k if isinstance(k, str) and k.replace("-", "").replace("_", "").replace(".", "").isalnum() \
                else json.dumps(k)
            if isinstance(v, dict) and v:
                lines.append(f"{pad}{key}:\n{to_yaml(v, indent + 1)}")
            else:
                lines.append(f"{pad}{key}: {to_yaml(v, indent + 1)}")
        return "\n".join(lines)
    return json.dumps(data)
