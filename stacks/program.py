"""The Pulumi program: read and validate the config, then run the program of the stack's role."""

from __future__ import annotations

import pulumi

from stacks import config


def main(cfg: config.StackConfig | None = None) -> pulumi.Output[dict]:
    cfg = cfg if cfg is not None else config.from_pulumi()
    if cfg.is_primary:
        from stacks import primary
        return primary.run(cfg)
    from stacks import secondary
    return secondary.run(cfg)
