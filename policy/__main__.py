"""Entry point the Pulumi CLI runs for ``pulumi preview|up --policy-pack policy``.

The CLI starts this directory with Python (the working directory and ``sys.path[0]`` are this
directory, hence ``import rules``). Constructing ``PolicyPack`` starts the analyzer's gRPC
server and serves until the CLI stops it, which is why nothing else may construct it.
"""

from pulumi_policy import EnforcementLevel, PolicyPack

import objectives
import rules

PolicyPack(
    name=rules.PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=rules.POLICIES + objectives.POLICIES,
    description="Disaster-recovery invariants of the regionpair prod and dr stacks.",
)
