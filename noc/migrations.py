"""Schema migrations of the NOC state database, applied in order, tracked by ``PRAGMA user_version``.

Never edit a released migration: add a new one.
"""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: foundation
    """
    CREATE TABLE agencies (id TEXT PRIMARY KEY, name TEXT NOT NULL, admin_email TEXT NOT NULL DEFAULT '');
    CREATE TABLE uplinks (id TEXT PRIMARY KEY, down_bps INTEGER NOT NULL, up_bps INTEGER NOT NULL);
    CREATE TABLE devices (
        id TEXT PRIMARY KEY, agency TEXT, kind TEXT NOT NULL, address TEXT NOT NULL,
        agent INTEGER NOT NULL DEFAULT 0, vendor TEXT, site TEXT NOT NULL DEFAULT '');
    CREATE TABLE iface_map (device TEXT NOT NULL, iface TEXT NOT NULL, agency TEXT NOT NULL,
        PRIMARY KEY (device, iface));
    CREATE TABLE agent_tokens (
        token_hash TEXT PRIMARY KEY, agent TEXT NOT NULL, created_at REAL NOT NULL, created_by TEXT NOT NULL,
        revoked_at REAL, revoked_by TEXT);
    CREATE INDEX agent_tokens_agent ON agent_tokens (agent);
    -- the dedup ledger: one row per accepted report
    CREATE TABLE reports (agent TEXT NOT NULL, seq INTEGER NOT NULL, received_at REAL NOT NULL,
        sample_time REAL NOT NULL, PRIMARY KEY (agent, seq)) WITHOUT ROWID;
    CREATE INDEX reports_received ON reports (received_at);
    -- reports at or below the floor were pruned from the ledger and count as duplicates
    CREATE TABLE report_floor (agent TEXT PRIMARY KEY, seq INTEGER NOT NULL);
    CREATE TABLE device_state (
        device TEXT PRIMARY KEY, source TEXT NOT NULL, last_seq INTEGER, last_seen REAL, interval_s REAL,
        boot_id TEXT, boot_time REAL, uptime_s REAL, cpu_percent REAL, mem_used INTEGER, mem_total INTEGER,
        clock_skew_s REAL, spool_dropped INTEGER, reboots INTEGER NOT NULL DEFAULT 0);
    CREATE TABLE iface_last (
        device TEXT NOT NULL, iface TEXT NOT NULL, seq INTEGER NOT NULL, boot_id TEXT NOT NULL,
        mono REAL NOT NULL, rx_bytes INTEGER NOT NULL, tx_bytes INTEGER NOT NULL, bits INTEGER NOT NULL,
        PRIMARY KEY (device, iface)) WITHOUT ROWID;
    CREATE TABLE iface_state (
        device TEXT NOT NULL, iface TEXT NOT NULL, agency TEXT, last_seen REAL NOT NULL,
        rx_bps REAL, tx_bps REAL, up INTEGER, PRIMARY KEY (device, iface)) WITHOUT ROWID;
    -- bytes moved per time bucket; rate = bytes * 8 / seconds.
    -- scope 'iface' key 'device/iface'; scope 'agency' key 'agency|device' (a device's share)
    CREATE TABLE rollups (scope TEXT NOT NULL, key TEXT NOT NULL, res INTEGER NOT NULL, bucket INTEGER NOT NULL,
        rx_bytes REAL NOT NULL, tx_bytes REAL NOT NULL, seconds REAL NOT NULL,
        PRIMARY KEY (scope, key, res, bucket)) WITHOUT ROWID;
    CREATE INDEX rollups_bucket ON rollups (res, bucket);
    -- lines waiting for the time-series store (transactional outbox)
    CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
        target TEXT NOT NULL, before TEXT, after TEXT, reason TEXT NOT NULL DEFAULT '',
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL);
    CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    """,
    # 2: SNMP polling — interface identity, reachability and device identity
    """
    ALTER TABLE iface_last ADD COLUMN if_index INTEGER;
    ALTER TABLE iface_state ADD COLUMN if_index INTEGER;
    ALTER TABLE iface_state ADD COLUMN alias TEXT;
    ALTER TABLE iface_state ADD COLUMN speed_bps INTEGER;
    ALTER TABLE device_state ADD COLUMN last_error TEXT;
    ALTER TABLE device_state ADD COLUMN last_error_at REAL;
    ALTER TABLE device_state ADD COLUMN sys_name TEXT;
    ALTER TABLE device_state ADD COLUMN sys_descr TEXT;
    """,
    # 3: bandwidth — base allocations, temporary loans, router reconciliation, incidents
    """
    CREATE TABLE bw_alloc (
        agency TEXT PRIMARY KEY, uplink TEXT NOT NULL, g_down INTEGER NOT NULL, c_down INTEGER NOT NULL,
        g_up INTEGER NOT NULL, c_up INTEGER NOT NULL, updated_at REAL NOT NULL, updated_by TEXT NOT NULL);
    CREATE TABLE bw_loans (
        id INTEGER PRIMARY KEY AUTOINCREMENT, src TEXT NOT NULL, dst TEXT NOT NULL, direction TEXT NOT NULL,
        amount INTEGER NOT NULL, ceil_raise INTEGER NOT NULL, until REAL NOT NULL, created_at REAL NOT NULL,
        created_by TEXT NOT NULL, reason TEXT NOT NULL, ended_at REAL);
    -- what the reconciler last saw on each shaping router
    CREATE TABLE bw_router (
        device TEXT PRIMARY KEY, checked_at REAL NOT NULL, in_sync INTEGER, drift TEXT NOT NULL DEFAULT '[]',
        last_push_at REAL, last_push_ok INTEGER, last_error TEXT);
    -- problems that need a person; the uptime issue adds its lifecycle on top
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL, category TEXT NOT NULL, agency TEXT,
        device TEXT, summary TEXT NOT NULL, opened_at REAL NOT NULL, resolved_at REAL, detail TEXT);
    CREATE UNIQUE INDEX incidents_open_key ON incidents (key) WHERE resolved_at IS NULL;
    """,
    # 4: backups — runs (as reported), the NOC's own verdicts with history, checks, drills, copies
    """
    CREATE TABLE backup_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT, agency TEXT NOT NULL, site TEXT NOT NULL, at REAL NOT NULL,
        ok INTEGER NOT NULL, snapshot_id TEXT, files INTEGER, bytes INTEGER, added INTEGER, duration_s REAL,
        warnings TEXT NOT NULL DEFAULT '[]', error TEXT, reported_by TEXT NOT NULL);
    CREATE INDEX backup_runs_agency ON backup_runs (agency, at);
    CREATE TABLE backup_verdicts (
        id INTEGER PRIMARY KEY AUTOINCREMENT, agency TEXT NOT NULL, site TEXT NOT NULL, at REAL NOT NULL,
        verdict TEXT NOT NULL, latest_id TEXT, latest_at REAL, age_s REAL, snapshots INTEGER NOT NULL,
        lag_s REAL, missing TEXT NOT NULL DEFAULT '[]', findings TEXT NOT NULL DEFAULT '[]');
    CREATE INDEX backup_verdicts_site ON backup_verdicts (agency, site, at);
    CREATE TABLE backup_checks (
        id INTEGER PRIMARY KEY AUTOINCREMENT, agency TEXT NOT NULL, site TEXT NOT NULL, repo TEXT NOT NULL,
        at REAL NOT NULL, subset TEXT, ok INTEGER NOT NULL, packs_read INTEGER, packs_total INTEGER,
        errors TEXT NOT NULL DEFAULT '[]', duration_s REAL);
    CREATE INDEX backup_checks_site ON backup_checks (agency, site, at);
    CREATE TABLE backup_drills (
        id INTEGER PRIMARY KEY AUTOINCREMENT, agency TEXT NOT NULL, site TEXT NOT NULL, at REAL NOT NULL,
        snapshot_id TEXT, ok INTEGER NOT NULL, files INTEGER, bytes INTEGER, restore_s REAL,
        rto_estimate_s REAL, detail TEXT NOT NULL DEFAULT '');
    CREATE INDEX backup_drills_site ON backup_drills (agency, site, at);
    CREATE TABLE backup_copies (
        id INTEGER PRIMARY KEY AUTOINCREMENT, agency TEXT NOT NULL, at REAL NOT NULL, copied INTEGER,
        ok INTEGER NOT NULL, error TEXT, duration_s REAL);
    -- restore size of each snapshot, read once per repository (snapshots never change)
    CREATE TABLE backup_sizes (
        repo TEXT NOT NULL, snapshot_id TEXT NOT NULL, bytes INTEGER NOT NULL, files INTEGER NOT NULL,
        PRIMARY KEY (repo, snapshot_id)) WITHOUT ROWID;
    """,
    # 5: uptime and incidents — topology, lifecycle, outages, maintenance, notifications
    """
    ALTER TABLE devices ADD COLUMN via TEXT;
    ALTER TABLE incidents ADD COLUMN acked_at REAL;
    ALTER TABLE incidents ADD COLUMN acked_by TEXT;
    ALTER TABLE incidents ADD COLUMN resolved_by TEXT;
    ALTER TABLE incidents ADD COLUMN parent_id INTEGER;
    ALTER TABLE incidents ADD COLUMN flaps INTEGER NOT NULL DEFAULT 0;
    -- 1 when the problem can be a consequence of an upstream outage (a missed heartbeat, a late backup)
    ALTER TABLE incidents ADD COLUMN consequence INTEGER NOT NULL DEFAULT 0;
    -- 0 nothing sent, 1 "opened" queued, 2 "resolved" queued
    ALTER TABLE incidents ADD COLUMN notify_state INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX incidents_parent ON incidents (parent_id);
    CREATE TABLE incident_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT, incident_id INTEGER NOT NULL, at REAL NOT NULL, actor TEXT NOT NULL,
        action TEXT NOT NULL, note TEXT NOT NULL DEFAULT '');
    CREATE INDEX incident_log_incident ON incident_log (incident_id);
    -- down intervals per device (end NULL while it lasts); kind: down | reboot
    CREATE TABLE outages (
        id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT NOT NULL, start REAL NOT NULL, end REAL,
        kind TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '');
    CREATE INDEX outages_device ON outages (device, start);
    CREATE UNIQUE INDEX outages_open ON outages (device) WHERE end IS NULL;
    CREATE TABLE avail_state (device TEXT PRIMARY KEY, up INTEGER NOT NULL, since REAL NOT NULL,
        reboots INTEGER NOT NULL DEFAULT 0, last_ok REAL);
    CREATE TABLE maintenance (
        id INTEGER PRIMARY KEY AUTOINCREMENT, device TEXT, agency TEXT, start REAL NOT NULL, end REAL NOT NULL,
        reason TEXT NOT NULL, created_by TEXT NOT NULL, created_at REAL NOT NULL);
    CREATE TABLE notifications (
        id INTEGER PRIMARY KEY AUTOINCREMENT, incident_id INTEGER NOT NULL, event TEXT NOT NULL,
        channel TEXT NOT NULL, target TEXT NOT NULL DEFAULT '', status TEXT NOT NULL, attempts INTEGER NOT NULL
        DEFAULT 0, next_at REAL NOT NULL, last_error TEXT, sent_at REAL, created_at REAL NOT NULL);
    CREATE INDEX notifications_due ON notifications (status, next_at);
    """,
    # 6: how long each backup ran, read by the NOC from the Pusat Data repository's own files
    """
    ALTER TABLE backup_sizes ADD COLUMN duration_s REAL;
    """,
    # 7: when the NOC first watched each device: availability counts from then, not from before it knew
    """
    ALTER TABLE avail_state ADD COLUMN monitored_since REAL;
    UPDATE avail_state SET monitored_since = min(since, coalesce(
        (SELECT min(start) FROM outages WHERE outages.device = avail_state.device), since));
    """,
    # 8: how often the NOC's reconciler reads each shaping router, so a router seen only that way
    # reads late after three missed rounds, whatever --reconcile-every says
    """
    ALTER TABLE bw_router ADD COLUMN every_s REAL;
    """,
]
