"""The plans of the region-pair runbooks (failover, switchover, failback) and their command line.

- ``failover.py``, ``switchover.py``: the two plans (the failback is a switchover going home);
- ``context.py``: what every step is given; ``state.py``: live state read without raising;
- ``database_gates.py``, ``fence_old_primary.py``, ``database_steps.py``, ``cdc_slots.py``: the
  database lanes (where the failover fences the old primary: ``fence_old_primary.py``);
- ``flows.py`` (shared), ``kafka.py``, ``s3.py``: the Kafka and S3 lanes;
- ``kubernetes.py``: the clusters' active-endpoints ConfigMap and the Deployments that read it;
- ``cli.py``: the command line that runs a plan; ``reconcile.py``: the stack commands after it.
"""
