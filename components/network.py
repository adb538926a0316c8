"""The network the data services live in.

Uses the VPC and the three private subnets named in config; when none are given (drill stacks)
it creates a small private VPC across three availability zones, with no internet gateway.
Security groups admit only the CIDRs and groups named in config, one rule resource per source,
so a runbook that revokes ingress (fencing) touches exactly one rule.

The runbook host's own way in (`runbook_cidrs`) is a separate rule per CIDR on the database
ports whose description starts with `RUNBOOK_ACCESS_PREFIX`: fencing revokes every other
ingress rule and keeps exactly these, so the runbooks can still read a fenced primary's WAL
position (a switchover's drain) and probe a rebuilt replica.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.common import child, require, slug

TYPE = "regionpair:network:Network"
KAFKA_IAM_TLS_PORT = 9098
RUNBOOK_ACCESS_PREFIX = "regionpair:runbook-access"
"""Must equal the AWS adapter's KEEP_PREFIX (runbooks/adapters/aws/rds.py); a test compares them."""


@dataclass(frozen=True)
class NetworkArgs:
    name_prefix: str
    """Physical name prefix (e.g. `regionpair-prod`). Required: subnet group names derive from it."""
    db_ports: Sequence[int]
    """Ports the databases listen on. Required: ingress is opened on exactly these."""
    allowed_cidrs: Sequence[str] = ()
    """Client CIDRs allowed in. Default: none (then allowed_security_group_ids must name a client)."""
    allowed_security_group_ids: Sequence[str] = ()
    """Client security groups allowed in. Default: none (then allowed_cidrs must name a client)."""
    runbook_cidrs: Sequence[str] = ()
    """Where the runbooks run from: database-port ingress that fencing keeps. Default: none (a fenced
    database is then unreachable to the runbooks too)."""
    vpc_id: str | None = None
    """An existing VPC. Default: create a private VPC with cidr across three zones."""
    subnet_ids: Sequence[str] = ()
    """Three private subnets of vpc_id in three zones. Default: the created VPC's subnets."""
    cidr: str = "10.10.0.0/16"
    """CIDR of the created VPC (ignored with vpc_id). Default: 10.10.0.0/16."""
    availability_zones: pulumi.Input[Sequence[str]] | None = None
    """Zones for the created subnets (first three used). Required when vpc_id is not given."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """Extra tags. Default: none beyond the provider's default tags."""


class Network(pulumi.ComponentResource):
    vpc_id: pulumi.Output[str]
    subnet_ids: pulumi.Output[list]
    db_subnet_group_name: pulumi.Output[str]
    db_security_group_id: pulumi.Output[str]
    kafka_security_group_id: pulumi.Output[str]

    def __init__(self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None):
        require(TYPE, "allowed_cidrs", list(args.allowed_cidrs), bool(args.allowed_cidrs or args.allowed_security_group_ids),
                "name at least one client CIDR or security group; nobody could reach the data otherwise")
        for c in args.allowed_cidrs:
            require(TYPE, "allowed_cidrs", c, ipaddress.ip_network(c).prefixlen > 0,
                    "0.0.0.0/0 would expose the databases to everyone; name the client networks")
        for c in args.runbook_cidrs:
            require(TYPE, "runbook_cidrs", c, ipaddress.ip_network(c).prefixlen > 0,
                    "0.0.0.0/0 would keep the databases open to everyone while fenced; name the runbook hosts")
        require(TYPE, "runbook_cidrs", list(args.runbook_cidrs), len(set(args.runbook_cidrs)) == len(args.runbook_cidrs),
                "list each CIDR once")
        require(TYPE, "db_ports", list(args.db_ports), bool(args.db_ports), "name the database ports")
        if args.vpc_id is not None:
            require(TYPE, "subnet_ids", list(args.subnet_ids), len(args.subnet_ids) == 3,
                    "with vpc_id give exactly three private subnets in three zones")
        else:
            require(TYPE, "subnet_ids", list(args.subnet_ids), not args.subnet_ids, "subnet_ids need vpc_id")
            require(TYPE, "availability_zones", args.availability_zones, args.availability_zones is not None,
                    "creating a VPC needs the region's availability zones")
        super().__init__(TYPE, name, None, opts)
        tags = dict(args.tags)

        if args.vpc_id is None:
            vpc = aws.ec2.Vpc(f"{name}-vpc", aws.ec2.VpcArgs(
                cidr_block=args.cidr, enable_dns_hostnames=True, enable_dns_support=True,
                tags={**tags, "Name": f"{args.name_prefix}-vpc"}), opts=child(self))
            blocks = list(ipaddress.ip_network(args.cidr).subnets(new_prefix=max(20, ipaddress.ip_network(args.cidr).prefixlen + 2)))[:3]
            zones = pulumi.Output.from_input(args.availability_zones)
            subnets = [
                aws.ec2.Subnet(f"{name}-private-{i}", aws.ec2.SubnetArgs(
                    vpc_id=vpc.id, cidr_block=str(block), availability_zone=zones.apply(lambda z, i=i: z[i]),
                    map_public_ip_on_launch=False,
                    tags={**tags, "Name": f"{args.name_prefix}-private-{i}"}), opts=child(self))
                for i, block in enumerate(blocks)
            ]
            vpc_id: pulumi.Input[str] = vpc.id
            subnet_ids: pulumi.Input[list] = pulumi.Output.all(*[s.id for s in subnets])
        else:
            vpc_id = args.vpc_id
            subnet_ids = list(args.subnet_ids)

        group = aws.rds.SubnetGroup(f"{name}-db", aws.rds.SubnetGroupArgs(
            name=f"{args.name_prefix}-db", description=f"{args.name_prefix} databases", subnet_ids=subnet_ids,
            tags=tags), opts=child(self))

        db_sg = aws.ec2.SecurityGroup(f"{name}-db-sg", aws.ec2.SecurityGroupArgs(
            name=f"{args.name_prefix}-db", description=f"{args.name_prefix} databases: clients named in config only",
            vpc_id=vpc_id, revoke_rules_on_delete=True, tags=tags), opts=child(self))
        kafka_sg = aws.ec2.SecurityGroup(f"{name}-kafka-sg", aws.ec2.SecurityGroupArgs(
            name=f"{args.name_prefix}-kafka", description=f"{args.name_prefix} Kafka brokers: clients named in config and the replicator",
            vpc_id=vpc_id, revoke_rules_on_delete=True, tags=tags), opts=child(self))

        def ingress(prefix: str, sg: aws.ec2.SecurityGroup, port: int, what: str) -> None:
            for cidr in args.allowed_cidrs:
                aws.vpc.SecurityGroupIngressRule(f"{prefix}-{port}-from-{slug(cidr)}", aws.vpc.SecurityGroupIngressRuleArgs(
                    security_group_id=sg.id, ip_protocol="tcp", from_port=port, to_port=port, cidr_ipv4=cidr
                    if ipaddress.ip_network(cidr).version == 4 else None,
                    cidr_ipv6=cidr if ipaddress.ip_network(cidr).version == 6 else None,
                    description=f"{what} from {cidr} (config)", tags=tags), opts=child(self))
            for group_id in args.allowed_security_group_ids:
                aws.vpc.SecurityGroupIngressRule(f"{prefix}-{port}-from-{group_id}", aws.vpc.SecurityGroupIngressRuleArgs(
                    security_group_id=sg.id, ip_protocol="tcp", from_port=port, to_port=port,
                    referenced_security_group_id=group_id, description=f"{what} from {group_id} (config)", tags=tags),
                    opts=child(self))

        for port in sorted(set(args.db_ports)):
            ingress(f"{name}-db", db_sg, port, "PostgreSQL")
            for cidr in args.runbook_cidrs:
                v6 = ipaddress.ip_network(cidr).version == 6
                aws.vpc.SecurityGroupIngressRule(f"{name}-db-{port}-runbooks-{slug(cidr)}", aws.vpc.SecurityGroupIngressRuleArgs(
                    security_group_id=db_sg.id, ip_protocol="tcp", from_port=port, to_port=port,
                    cidr_ipv4=None if v6 else cidr, cidr_ipv6=cidr if v6 else None,
                    description=f"{RUNBOOK_ACCESS_PREFIX} PostgreSQL from {cidr} (config network.runbook_cidrs; "
                                "fencing keeps it)", tags=tags), opts=child(self))
        ingress(f"{name}-kafka", kafka_sg, KAFKA_IAM_TLS_PORT, "Kafka IAM/TLS")
        # the MSK Replicator's network interfaces sit in the brokers' group and talk to them
        aws.vpc.SecurityGroupIngressRule(f"{name}-kafka-from-self", aws.vpc.SecurityGroupIngressRuleArgs(
            security_group_id=kafka_sg.id, ip_protocol="tcp", from_port=KAFKA_IAM_TLS_PORT, to_port=KAFKA_IAM_TLS_PORT,
            referenced_security_group_id=kafka_sg.id, description="replicator to brokers", tags=tags), opts=child(self))
        aws.vpc.SecurityGroupEgressRule(f"{name}-kafka-to-self", aws.vpc.SecurityGroupEgressRuleArgs(
            security_group_id=kafka_sg.id, ip_protocol="tcp", from_port=KAFKA_IAM_TLS_PORT, to_port=KAFKA_IAM_TLS_PORT,
            referenced_security_group_id=kafka_sg.id, description="replicator to brokers", tags=tags), opts=child(self))

        self.vpc_id = pulumi.Output.from_input(vpc_id)
        self.subnet_ids = pulumi.Output.from_input(subnet_ids)
        self.db_subnet_group_name = group.name
        self.db_security_group_id = db_sg.id
        self.kafka_security_group_id = kafka_sg.id
        self.register_outputs({"vpc_id": self.vpc_id, "subnet_ids": self.subnet_ids,
                               "db_subnet_group_name": self.db_subnet_group_name,
                               "db_security_group_id": self.db_security_group_id,
                               "kafka_security_group_id": self.kafka_security_group_id})
