"""What every runbook is built on, and nothing in it knows a plan, a backup or an adapter: the engine
(steps, gates, phases) and its journal, the ports (Protocols of the side effects), errors and exit
codes, the clock, the lock, the audit trail, notifications, reports, metrics, secret scrubbing,
``--help`` text, the console and outputs loading shared by every command; and a minimal Redis
client (the sandbox's cache uses it)."""
