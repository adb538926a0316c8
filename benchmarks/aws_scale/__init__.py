"""Failover of N databases through the AWS adapters on moto, with AWS's waits and limits modelled
(run.py says how and names the documents): ``python -m benchmarks.aws_scale``."""
