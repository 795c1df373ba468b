"""Where the worker tasks run: a new VPC across 2+ AZs, or an existing one."""

from __future__ import annotations

from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import NetworkConfig


class Network(Construct):
    """The VPC, the subnets tasks use and a security group that admits nothing inbound.

    Default (``egress="public"``): a new VPC with public subnets only; tasks get a public IP so
    they reach SQS, ECR, CloudWatch and external APIs through the internet gateway. This is the
    cheapest egress: a NAT gateway costs about 45 USD a month per AZ plus data, VPC interface
    endpoints about 7 USD a month each per AZ. Nothing can connect in: the security group has
    no inbound rule. ``egress="nat"`` adds private subnets behind one NAT gateway (a fixed
    egress IP for allow-listing external APIs). Rejected traffic is logged (flow log, 30 days).

    Attributes: ``vpc``, ``subnets`` (a SubnetSelection), ``assign_public_ip``,
    ``security_group``.
    """

    def __init__(self, scope: Construct, id_: str, *, config: NetworkConfig) -> None:
        super().__init__(scope, id_)
        if config.vpc_id is not None:
            self.vpc = ec2.Vpc.from_vpc_attributes(
                self,
                "Vpc",
                vpc_id=config.vpc_id,
                availability_zones=list(config.availability_zones),
            )
            self.subnets = ec2.SubnetSelection(
                subnets=[
                    ec2.Subnet.from_subnet_id(self, f"Subnet{index}", subnet_id)
                    for index, subnet_id in enumerate(config.subnet_ids)
                ]
            )
            self.assign_public_ip = config.egress == "public"
        else:
            self.vpc = self._new_vpc(config)
            private = config.egress == "nat"
            self.subnets = ec2.SubnetSelection(
                subnet_type=(
                    ec2.SubnetType.PRIVATE_WITH_EGRESS if private else ec2.SubnetType.PUBLIC
                )
            )
            self.assign_public_ip = not private
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="Worker tasks: no inbound access, outbound to AWS APIs and job targets",
            allow_all_outbound=True,
        )

    def _new_vpc(self, config: NetworkConfig) -> ec2.Vpc:
        subnets = [ec2.SubnetConfiguration(name="Public", subnet_type=ec2.SubnetType.PUBLIC)]
        if config.egress == "nat":
            subnets.append(
                ec2.SubnetConfiguration(
                    name="Private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS
                )
            )
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=config.max_azs,
            nat_gateways=1 if config.egress == "nat" else 0,
            subnet_configuration=subnets,
            # No custom resource (a Lambda) to empty the default security group: nothing here
            # uses it; tasks get their own group with no inbound rule.
            restrict_default_security_group=False,
        )
        vpc.add_flow_log(
            "RejectedTraffic",
            traffic_type=ec2.FlowLogTrafficType.REJECT,
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(
                logs.LogGroup(self, "FlowLogs", retention=logs.RetentionDays.ONE_MONTH)
            ),
        )
        return vpc
