"""Code that runs in the sandbox's worker processes (``python -m sandbox.workers.<module>``): the
helpers (DNS, the link, moto), MirrorMaker 2's supervisor, S3 replication, the Kafka backup.
They import the shared modules of ``sandbox`` (layout, proc, flows, …), never the controller's
(``control``, ``lifecycle``); the controller starts them by module name and never imports them."""
