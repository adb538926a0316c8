"""One aws.Provider per region, built once per program and passed explicitly to every component."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from stacks.config import StackConfig

ROUTE53_METRICS_REGION = "us-east-1"


class Providers:
    """The providers a stack needs, created on first use (so a stack creates only those it uses)."""

    def __init__(self, cfg: StackConfig):
        self._cfg = cfg
        self._by_region: dict[str, aws.Provider] = {}
        self._kubernetes: pulumi.ProviderResource | None = None

    def default_tags(self) -> dict[str, str]:
        return {**self._cfg.tags, "regionpair:project": self._cfg.project, "regionpair:stack": self._cfg.stack}

    def region(self, region: str) -> aws.Provider:
        if region not in self._by_region:
            self._by_region[region] = aws.Provider(f"aws-{region}", aws.ProviderArgs(
                region=region,
                default_tags=aws.ProviderDefaultTagsArgs(tags=self.default_tags()),
                **self._outage_settings(region),
            ))
        return self._by_region[region]

    def _outage_settings(self, region: str) -> dict:
        """The dr stack's provider for prod's region must start without calling that region: the
        reconcile after a failover (`pulumi refresh`/`up -s dr`) runs while it may be down, and a
        refresh configures the provider as the state stored it, so the settings are there from the
        first `up`, not only once promoted. pulumi-aws Provider: skip_credentials_validation (no STS
        GetCallerIdentity at configure; the installed pulumi-aws 7 SDK sends false by default) and
        skip_requesting_account_id (no STS/IAM call for the account id; none of the resources declared
        with this provider has the provider build an ARN from it). Prod's own providers are untouched."""
        if not self._cfg.is_primary and region == self._cfg.primary_region:
            return {"skip_credentials_validation": True, "skip_requesting_account_id": True}
        return {}

    @property
    def home(self) -> aws.Provider:
        """This stack's region."""
        return self.region(self._cfg.region)

    def kubernetes(self) -> pulumi.ProviderResource:
        """This region's cluster, named explicitly by the `kubernetes` section (never the ambient current-context)."""
        k8s_cfg = self._cfg.kubernetes
        if k8s_cfg is None:
            raise ValueError("no regionpair:kubernetes section: this stack declares no Kubernetes objects")
        if self._kubernetes is None:
            import pulumi_kubernetes as k8s  # only stacks with a cluster load the SDK

            self._kubernetes = k8s.Provider(f"k8s-{self._cfg.region}", k8s.ProviderArgs(
                kubeconfig=pulumi.Output.secret(k8s_cfg.kubeconfig) if k8s_cfg.kubeconfig is not None else None,
                context=k8s_cfg.context,
                enable_server_side_apply=True,
                # a change to the endpoints ConfigMap is applied in place, never as delete-and-create of
                # the object every application reads
                enable_config_map_mutable=True,
                # never take fields over by force: once the runbooks own the endpoints' data (their own
                # field manager), an update carrying Pulumi's original values must conflict, not win
                enable_patch_force=False,
            ))
        return self._kubernetes


def account_id(provider: aws.Provider) -> pulumi.Output[str]:
    return aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(provider=provider)).account_id


def availability_zones(provider: aws.Provider) -> pulumi.Output[list]:
    return aws.get_availability_zones_output(
        state="available", opts=pulumi.InvokeOutputOptions(provider=provider)).names
