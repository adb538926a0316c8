"""The regionpair CrossGuard policy pack: the DR invariants, checked on every preview and update.

``policy/rules.py`` assembles the pack's policies (importable, side-effect free) from the checks of
``invariants.py``, ``stack_invariants.py`` and the area modules, all standing on ``base.py``;
``policy/__main__.py`` is what the Pulumi CLI runs (``--policy-pack policy``) and the only place
the ``PolicyPack`` is constructed. See docs/policy.md.
"""
