"""The regionpair CrossGuard policy pack: the DR invariants, checked on every preview and update.

``policy/rules.py`` holds the checks and the policy objects (importable, side-effect free);
``policy/__main__.py`` is what the Pulumi CLI runs (``--policy-pack policy``) and the only place
the ``PolicyPack`` is constructed. See docs/policy.md.
"""
