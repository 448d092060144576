"""The NOC: domain model, inventory, state store, service wiring and the `pantau` CLI."""
