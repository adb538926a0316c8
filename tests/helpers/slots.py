"""A well-formed replication-slot record, for the slot tests (unit and AWS contract)."""

from __future__ import annotations

GOOD = {"schema_version": 1, "database": "app", "captured_at": 1000.0, "server_lsn": "0/500", "in_recovery": False,
        "read_only": False,
        "slots": [{"name": "cdc", "plugin": "pgoutput", "two_phase": False, "active": True,
                   "confirmed_flush_lsn": "0/300", "restart_lsn": "0/200"}],
        "publications": [{"name": "cdc_pub", "all_tables": False, "tables": ["public.orders"], "insert": True,
                          "update": True, "delete": True, "truncate": False}]}
