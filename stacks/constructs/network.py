"""Where the worker tasks run: a new VPC across 2+ AZs, or an existing one."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

import jsii
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from stacks.config import NetworkConfig
from stacks.constructs.kit_key import encrypted_log_group

S = ec2.InterfaceVpcEndpointAwsService
# What a Fargate task (platform 1.4) of the kit calls, by construct id: the queue, the image
# pull (ECR API and registry; layers come from S3 through the gateway endpoint), the awslogs
# driver, and ECS for task scale-in protection (the agent calls UpdateTaskProtection for the
# worker). The agent's own control-plane traffic (ecs-agent, ecs-telemetry endpoints) is an
# EC2 launch type need, not Fargate's; the worker publishes no metrics (they come from log
# metric filters), so no CloudWatch monitoring endpoint.
INTERFACE_ENDPOINTS: dict[str, ec2.InterfaceVpcEndpointAwsService] = {
    "Sqs": S.SQS,
    "EcrApi": S.ECR,
    "EcrDocker": S.ECR_DOCKER,
    "Logs": S.CLOUDWATCH_LOGS,
    "Ecs": S.ECS,
}
# Only when the task reads secrets of that kind (worker.secrets).
SECRET_ENDPOINTS = {"ssm": ("Ssm", S.SSM), "secretsmanager": ("SecretsManager", S.SECRETS_MANAGER)}
# The new VPC's range, and where each subnet lives in it: every (kind, AZ) has a /20 of its own
# (4,091 addresses), the same whatever `egress` and `max_azs` say, so a switch adds or removes
# subnets and never moves one (CloudFormation creates a moved subnet before it deletes the old
# one: InvalidSubnet.Conflict). Public subnets of AZ 1-6: slots 0-5; private: slots 8-13.
VPC_CIDR = "10.0.0.0/16"
SUBNET_PREFIX = 20
SUBNET_SLOTS = {"Public": 0, "Private": 8}


@jsii.implements(ec2.IIpAddresses)
class FixedSubnetRanges:
    """The VPC's ``VPC_CIDR`` cut into fixed slots (``SUBNET_SLOTS``): a subnet's range depends
    on its kind and AZ only (CDK's default splits the range by the subnets that exist)."""

    def allocate_vpc_cidr(self) -> ec2.VpcIpamOptions:
        return ec2.VpcIpamOptions(cidr_block=VPC_CIDR)

    def allocate_subnets_cidr(
        self, *, requested_subnets: Sequence[Any], vpc_cidr: str
    ) -> ec2.SubnetIpamOptions:
        return ec2.SubnetIpamOptions(
            allocated_subnets=[
                ec2.AllocatedSubnet(cidr=subnet_cidr(r.configuration.name, r.subnet_construct_id))
                for r in requested_subnets
            ]
        )


def subnet_cidr(kind: str, construct_id: str) -> str:
    """The fixed range of the subnet ``construct_id`` (``PublicSubnet2``: kind Public, AZ 2)."""
    az = int(re.fullmatch(rf"{kind}Subnet(\d+)", construct_id).group(1))  # type: ignore[union-attr]
    slot = SUBNET_SLOTS[kind] + az - 1
    return str(list(ipaddress.ip_network(VPC_CIDR).subnets(new_prefix=SUBNET_PREFIX))[slot])


class Network(Construct):
    """The VPC, the subnets tasks use and a security group that admits nothing inbound.

    ``egress`` (config.network.egress) chooses how tasks reach AWS APIs and job targets:

    * ``public`` (default, cheapest): a new VPC with public subnets only; tasks get a public IP
      and go out through the internet gateway. The service assigns the IP (an acknowledged
      finding of the compliance scans, docs/security.md); no subnet auto-assigns one.
    * ``nat``: private subnets behind one NAT gateway (a fixed egress IP for allow-listing
      external APIs), public subnets for the NAT gateway only.
    * ``endpoints``: isolated private subnets, no NAT gateway, no internet gateway: VPC
      interface endpoints (``INTERFACE_ENDPOINTS``, plus SSM / Secrets Manager when ``secrets``
      use them, and SSM Messages with ``ecs_exec``) and the S3 gateway endpoint (plus DynamoDB's
      when ``dynamodb``). Jobs cannot reach the internet. The endpoints admit HTTPS from the
      task security group only.

    Prices of the three: docs/security.md. Nothing can connect in: the task security group has
    no inbound rule. Rejected traffic is logged (flow log kept ``log_retention``, default 30
    days, encrypted with ``log_key`` when given; the group is deleted with the stack unless
    ``retain_logs``, default false, which must match the key's removal policy). An existing
    VPC (``vpc_id``) is used as it is: ``nat`` and ``endpoints`` both mean tasks without a
    public IP, the VPC provides the way out.

    Attributes: ``vpc``, ``subnets`` (a SubnetSelection), ``assign_public_ip``,
    ``security_group``, ``endpoints`` (construct id -> endpoint; empty unless ``endpoints``).
    """

    def __init__(
        self,
        scope: Construct,
        id_: str,
        *,
        config: NetworkConfig,
        log_key: kms.IKey | None = None,
        log_retention: logs.RetentionDays = logs.RetentionDays.ONE_MONTH,
        retain_logs: bool = False,
        secret_kinds: frozenset[str] = frozenset(),
        dynamodb: bool = False,
        ecs_exec: bool = False,
    ) -> None:
        super().__init__(scope, id_)
        self.endpoints: dict[str, ec2.IVpcEndpoint] = {}
        self.assign_public_ip = config.egress == "public"
        if config.vpc_id is not None:
            self.vpc: ec2.IVpc = ec2.Vpc.from_vpc_attributes(
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
        else:
            subnet_type = {
                "public": ec2.SubnetType.PUBLIC,
                "nat": ec2.SubnetType.PRIVATE_WITH_EGRESS,
                "endpoints": ec2.SubnetType.PRIVATE_ISOLATED,
            }[config.egress]
            self.vpc = self._new_vpc(config, subnet_type, log_key, log_retention, retain_logs)
            self.subnets = ec2.SubnetSelection(subnet_type=subnet_type)
        self.security_group = ec2.SecurityGroup(
            self,
            "TaskSecurityGroup",
            vpc=self.vpc,
            description="Worker tasks: no inbound access, outbound to AWS APIs and job targets",
            allow_all_outbound=True,
        )
        if config.egress == "endpoints" and config.vpc_id is None:
            self._add_endpoints(secret_kinds, dynamodb, ecs_exec)

    def _new_vpc(
        self,
        config: NetworkConfig,
        subnet_type: ec2.SubnetType,
        log_key: kms.IKey | None,
        log_retention: logs.RetentionDays,
        retain_logs: bool,
    ) -> ec2.Vpc:
        # No subnet hands out public IPs (CT.EC2.PR.11): with public egress each task gets its
        # own from the service (assignPublicIp), the NAT gateway has its Elastic IP.
        public = ec2.SubnetConfiguration(
            name="Public", subnet_type=ec2.SubnetType.PUBLIC, map_public_ip_on_launch=False
        )
        private = ec2.SubnetConfiguration(name="Private", subnet_type=subnet_type)
        subnets = {
            "public": [public],
            "nat": [public, private],  # the NAT gateway lives in a public subnet
            "endpoints": [private],
        }[config.egress]
        vpc = ec2.Vpc(
            self,
            "Vpc",
            max_azs=config.max_azs,
            ip_addresses=FixedSubnetRanges(),
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
                encrypted_log_group(self, "FlowLogs", log_retention, log_key, retain=retain_logs)
            ),
        )
        return vpc

    def _add_endpoints(self, secret_kinds: frozenset[str], dynamodb: bool, ecs_exec: bool) -> None:
        """Interface endpoints behind one security group (HTTPS from the tasks only), and the
        gateway endpoints (free) on the isolated subnets' route tables."""
        endpoint_group = ec2.SecurityGroup(
            self,
            "EndpointSecurityGroup",
            vpc=self.vpc,
            description="VPC interface endpoints: HTTPS from the worker tasks only",
            allow_all_outbound=False,
        )
        endpoint_group.add_ingress_rule(
            self.security_group, ec2.Port.tcp(443), "HTTPS from the worker tasks"
        )
        services = dict(INTERFACE_ENDPOINTS)
        services.update(SECRET_ENDPOINTS[kind] for kind in sorted(secret_kinds))
        if ecs_exec:  # the SSM agent's Session Manager channels
            services["SsmMessages"] = S.SSM_MESSAGES
        for name, service in services.items():
            self.endpoints[name] = self.vpc.add_interface_endpoint(
                name,
                service=service,
                subnets=self.subnets,
                security_groups=[endpoint_group],
                open=False,
                private_dns_enabled=True,
            )
        gateways = {"S3": ec2.GatewayVpcEndpointAwsService.S3}
        if dynamodb:
            gateways["DynamoDb"] = ec2.GatewayVpcEndpointAwsService.DYNAMODB
        for name, gateway in gateways.items():
            self.endpoints[name] = self.vpc.add_gateway_endpoint(
                name, service=gateway, subnets=[self.subnets]
            )
