"""SNMP polling of routers and switches: numeric OIDs, an asyncio client on pysnmp 7, the poller."""
