"""Entry point the Pulumi CLI runs for ``pulumi preview|up --policy-pack policy``.

The CLI runs this file with this directory as ``sys.path[0]`` (``python -m pulumi.policy <engine>
.``). The pack's modules form the package ``policy`` and import each other relatively, so its parent
goes on the path in place of this directory and the pack is imported as a package, exactly as the
tests import it. Constructing ``PolicyPack`` starts the analyzer's gRPC server and serves until the
CLI stops it, which is why nothing else may construct it.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]
sys.path.insert(0, os.path.dirname(HERE))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy import objectives, rules  # noqa: E402

PolicyPack(
    name=rules.PACK_NAME,
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=rules.POLICIES + objectives.POLICIES,
    description="Disaster-recovery invariants of the regionpair prod and dr stacks.",
)
