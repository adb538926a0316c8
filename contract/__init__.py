"""What the stacks promise everything else, in pure Python (no Pulumi import): the outputs document
(``contract.outputs``), the active-endpoints ConfigMap (``active_endpoints``), the slot backup
document (``slot_backup``), MirrorMaker 2's connector settings (``mirrormaker2``) and the typed
field reader the stack config and the outputs both validate with (``fields``).
"""
