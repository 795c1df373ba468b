"""Stand up an environment's stacks in moto and run the fleet on them: try the operator commands.

    queue-worker local-stack --env dev [--port 5000 --messages 20 --duration 1 --poison 2
        --malformed 1 --processes N --prefetch S --json]

Reads the environment's synthesized templates in cdk.out/ENV (`make synth ENV=ENV` writes
them) and starts moto's server on 127.0.0.1:PORT (default 5000, so that another terminal finds
it). In it, :func:`stand_up` creates:

- the queue stack QueueWorker-ENV-Queue: the synthesized queue template itself, deployed
  through moto's CloudFormation (the real queue and DLQ names, settings and outputs; the
  bootstrap version parameter it reads is put in SSM first, as `cdk bootstrap` would). Were
  moto to refuse it, the queues are created with SQS as the template says and a stack carries
  the template's outputs; the ready block says which way was taken;
- the parts of QueueWorker-ENV-Worker the operator commands read: the ECS cluster, the task
  definition's family, the service (desired 1, one running task) and its scalable target
  (the template's min and max: what `pause` suspends), the worker log group and
  the template's CloudWatch alarms (their names, metrics and thresholds), named as the
  template names them, else as CloudFormation would (STACK-LOGICALID, without its random
  suffix); then a stack of that name whose outputs (ClusterName, ServiceName, LogGroupName)
  name them. moto's CloudFormation cannot take the worker template (its VPC, KMS key, roles).

Then it runs the real supervisord fleet on the work queue with the template's container
environment and local-run's overrides (the example handler, a 1-2 s retry backoff), ships
every line of the fleet's output to the log group (a stream WORKER-PREFIX/CONTAINER/TASK, as
the awslogs driver names it), enqueues a batch (good, poison and malformed messages: the DLQ
fills within seconds), and evaluates the alarms on SQS queue depth every few seconds (moto
does not evaluate alarms), so `status` shows the DLQ alarm firing. Once ready it prints one
block: what to run in another terminal (`status`, `logs`, `dlq`, `redrive` with
AWS_ENDPOINT_URL set); with --json that block is one JSON document. It serves until Ctrl-C or
SIGTERM, then stops the fleet (no child process outlives it) and the server: exit 130.
Exit 1 with one `error:` line when the templates are missing or the port is taken.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Any

import boto3
from botocore.exceptions import ClientError

from scripts import _cli
from scripts._aws import (
    CLUSTER_OUTPUT,
    DLQ_URL_OUTPUT,
    LOG_GROUP_OUTPUT,
    QUEUE_STACK,
    QUEUE_STACK_OUTPUTS,
    QUEUE_URL_OUTPUT,
    SERVICE_OUTPUT,
    WORKER_STACK,
    WORKER_STACK_OUTPUTS,
)
from scripts._cli import OpsError, Parser, print_json
from scripts.devtools.local_run import (
    FAKE_CREDENTIALS,
    CountingMoto,
    FleetLog,
    add_batch_arguments,
    enqueue_batch,
    fake_aws_env,
    fleet_environment,
    local_overrides,
    read_templates,
    say,
    start_fleet,
)

HELP = "stand up an environment's stacks in moto, run the fleet on them: try status, logs, dlq"
DEFAULT_PORT = 5000
BOOTSTRAP_VERSION = "21"
"""The CDK bootstrap version put in SSM for the templates' BootstrapVersion parameter."""
ALARM_EVALUATION_SECONDS = 2.0
LOG_SHIPPING_SECONDS = 0.5
OPERATOR_VERBS = ("status", "logs", "dlq", "redrive")
DEPLOYED_BY_CLOUDFORMATION = "the synthesized queue template, through moto's CloudFormation"
DEPLOYED_BY_SQS = "SQS calls as the queue template says, and a stack carrying its outputs"
QUEUE_TYPE = "AWS::SQS::Queue"
CLUSTER_TYPE = "AWS::ECS::Cluster"
SERVICE_TYPE = "AWS::ECS::Service"
TASK_DEFINITION_TYPE = "AWS::ECS::TaskDefinition"
LOG_GROUP_TYPE = "AWS::Logs::LogGroup"
ALARM_TYPE = "AWS::CloudWatch::Alarm"
NAME_PROPERTIES = {
    QUEUE_TYPE: "QueueName",
    CLUSTER_TYPE: "ClusterName",
    SERVICE_TYPE: "ServiceName",
    LOG_GROUP_TYPE: "LogGroupName",
    ALARM_TYPE: "AlarmName",
    TASK_DEFINITION_TYPE: "Family",
}
ALARM_PROPERTIES = (
    "AlarmDescription",
    "ComparisonOperator",
    "EvaluationPeriods",
    "DatapointsToAlarm",
    "Threshold",
    "TreatMissingData",
    "MetricName",
    "Namespace",
    "Statistic",
    "ExtendedStatistic",
    "Period",
    "Unit",
    "Dimensions",
    "Metrics",
)
COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanOrEqualToThreshold": lambda value, threshold: value >= threshold,
    "GreaterThanThreshold": lambda value, threshold: value > threshold,
    "LessThanThreshold": lambda value, threshold: value < threshold,
    "LessThanOrEqualToThreshold": lambda value, threshold: value <= threshold,
}
QUEUE_DEPTH_METRIC = ("AWS/SQS", "ApproximateNumberOfMessagesVisible")


@dataclass(frozen=True)
class LocalStack:
    """What :func:`stand_up` made: the stacks' names and outputs, how the queue stack was
    deployed, the alarms, and the log stream the fleet's lines go to."""

    env: str
    region: str
    endpoint_url: str
    queue_stack: str
    worker_stack: str
    queue_outputs: Mapping[str, str]
    worker_outputs: Mapping[str, str]
    queue_stack_deployed_by: str
    task_definition: str
    alarms: tuple[str, ...]
    log_stream: str

    @property
    def queue_url(self) -> str:
        return self.queue_outputs[QUEUE_URL_OUTPUT]

    @property
    def dlq_url(self) -> str:
        return self.queue_outputs[DLQ_URL_OUTPUT]

    @property
    def log_group(self) -> str:
        return self.worker_outputs[LOG_GROUP_OUTPUT]


class Template:
    """A synthesized template: its resources, and intrinsic values resolved where they can be."""

    def __init__(self, path: Path, stack: str) -> None:
        self.path = path
        self.stack = stack
        self.document: dict[str, Any] = json.loads(path.read_text())
        self.resources: dict[str, Any] = self.document.get("Resources", {})

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        """{logical id: properties} of the resources of one type."""
        return {
            logical_id: resource.get("Properties", {})
            for logical_id, resource in self.resources.items()
            if resource.get("Type") == kind
        }

    def physical_name(self, logical_id: str) -> str:
        """The resource's name: its name property when literal, else CloudFormation's
        STACK-LOGICALID (without the random suffix CloudFormation adds)."""
        resource = self.resources[logical_id]
        name = resource.get("Properties", {}).get(NAME_PROPERTIES.get(resource["Type"], ""))
        return name if isinstance(name, str) else f"{self.stack}-{logical_id}"

    def output_value(self, key: str, lookup: Callable[[str, str], str]) -> str:
        """Output `key`: a literal, else the Ref/Fn::GetAtt it names, through `lookup(logical
        id, attribute)` (attribute "Ref" for a Ref)."""
        try:
            value = self.document["Outputs"][key]["Value"]
        except KeyError:
            raise OpsError(f"{self.path}: no output {key}") from None
        if isinstance(value, str):
            return value
        if "Ref" in value:
            return lookup(value["Ref"], "Ref")
        if "Fn::GetAtt" in value:
            logical_id, attribute = value["Fn::GetAtt"]
            return lookup(logical_id, attribute)
        raise OpsError(f"{self.path}: output {key} is neither literal nor a Ref or Fn::GetAtt")


def stand_up(cdk_out: Path, env_name: str, endpoint_url: str) -> LocalStack:
    """Create ENV's queue stack and the worker stack's readable parts at `endpoint_url` (an
    embedded AWS such as moto's server; never real AWS: the credentials are fake), from the
    assembly cdk_out/ENV. The service's task counts as running only where the server's process
    has MOTO_ECS_SERVICE_RUNNING=1 (local-stack sets it); the stacks must not exist yet."""
    assembly = _cli.synthesized(cdk_out, env_name)
    stacks, region = stack_artifacts(assembly)
    prefix = stack_prefix(stacks, assembly)
    queue_stack = QUEUE_STACK.format(prefix=prefix)
    worker_stack = WORKER_STACK.format(prefix=prefix)
    client = partial(
        boto3.client,
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )
    cloudformation = client("cloudformation")
    if stack_exists(cloudformation, queue_stack):
        raise OpsError(f"stack {queue_stack} already exists at {endpoint_url}")
    queue_template = Template(stacks[queue_stack], queue_stack)
    put_bootstrap_version(client("ssm"), queue_template)
    queue_outputs, deployed_by = deploy_queue_stack(cloudformation, client("sqs"), queue_template)
    worker_template = Template(stacks[worker_stack], worker_stack)
    names = {
        key: worker_template.output_value(key, lambda logical_id, _: logical_id)
        for key in WORKER_STACK_OUTPUTS
    }  # the logical ids the outputs name
    cluster = worker_template.physical_name(names[CLUSTER_OUTPUT])
    service = worker_template.physical_name(names[SERVICE_OUTPUT])
    log_group = worker_template.physical_name(names[LOG_GROUP_OUTPUT])
    task_definition, container, stream_prefix = register_task_definition(
        client("ecs"), worker_template, names[SERVICE_OUTPUT]
    )
    task_id = run_service(client("ecs"), client("ec2"), cluster, service, task_definition)
    register_scaling(
        client("application-autoscaling"), worker_template, names[SERVICE_OUTPUT], cluster, service
    )
    log_stream = f"{stream_prefix}/{container}/{task_id}"
    logs = client("logs")
    logs.create_log_group(logGroupName=log_group)
    logs.create_log_stream(logGroupName=log_group, logStreamName=log_stream)
    alarms = put_alarms(client("cloudwatch"), worker_template, queue_template, queue_outputs)
    worker_outputs = {
        CLUSTER_OUTPUT: cluster,
        SERVICE_OUTPUT: service,
        LOG_GROUP_OUTPUT: log_group,
    }
    create_outputs_stack(cloudformation, worker_stack, worker_outputs)
    return LocalStack(
        env=env_name,
        region=region,
        endpoint_url=endpoint_url,
        queue_stack=queue_stack,
        worker_stack=worker_stack,
        queue_outputs={key: queue_outputs[key] for key in QUEUE_STACK_OUTPUTS},
        worker_outputs=worker_outputs,
        queue_stack_deployed_by=deployed_by,
        task_definition=task_definition,
        alarms=alarms,
        log_stream=log_stream,
    )


def stack_artifacts(assembly: Path) -> tuple[dict[str, Path], str]:
    """({stack name: its template}, the region) from the assembly's manifest.json."""
    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks: dict[str, Path] = {}
    regions = set()
    for name, artifact in manifest.get("artifacts", {}).items():
        if artifact.get("type") == "aws:cloudformation:stack":
            stacks[name] = assembly / artifact["properties"]["templateFile"]
            regions.add(artifact["environment"].rsplit("/", 1)[-1])
    if len(regions) != 1 or "unknown-region" in regions:
        raise OpsError(f"{assembly}/manifest.json: expected stacks in one region, got {regions}")
    return stacks, regions.pop()


def stack_prefix(stacks: Mapping[str, Path], assembly: Path) -> str:
    """The environment's stack prefix: the one whose queue and worker stacks are both there."""
    suffix = QUEUE_STACK.format(prefix="")
    for name in stacks:
        prefix = name.removesuffix(suffix)
        if name.endswith(suffix) and WORKER_STACK.format(prefix=prefix) in stacks:
            return prefix
    raise OpsError(f"{assembly}: no queue stack and worker stack pair among {sorted(stacks)}")


def stack_exists(cloudformation: Any, stack: str) -> bool:
    try:
        cloudformation.describe_stacks(StackName=stack)
    except ClientError:
        return False
    return True


def put_bootstrap_version(ssm: Any, template: Template) -> None:
    """The SSM parameters the template's parameters read (BootstrapVersion), as bootstrapped."""
    for parameter in template.document.get("Parameters", {}).values():
        if str(parameter.get("Type", "")).startswith("AWS::SSM::Parameter::Value"):
            ssm.put_parameter(
                Name=parameter["Default"], Value=BOOTSTRAP_VERSION, Type="String", Overwrite=True
            )


def deploy_queue_stack(
    cloudformation: Any, sqs: Any, template: Template
) -> tuple[dict[str, str], str]:
    """(every output of the queue stack, how it was deployed): the template through moto's
    CloudFormation; failing that, the queues with SQS and a stack carrying the outputs."""
    try:
        cloudformation.create_stack(
            StackName=template.stack, TemplateBody=template.path.read_text()
        )
        outputs = stack_outputs(cloudformation, template.stack)
        if all(key in outputs for key in QUEUE_STACK_OUTPUTS):
            return outputs, DEPLOYED_BY_CLOUDFORMATION
    except ClientError as error:
        say(f"moto's CloudFormation refused {template.path.name} ({error}): creating the queues")
    with contextlib.suppress(ClientError):
        cloudformation.delete_stack(StackName=template.stack)
    attributes = create_queues(sqs, template)

    def lookup(logical_id: str, attribute: str) -> str:
        return attributes[logical_id]["QueueUrl" if attribute == "Ref" else attribute]

    outputs = {key: template.output_value(key, lookup) for key in template.document["Outputs"]}
    create_outputs_stack(cloudformation, template.stack, outputs)
    return outputs, DEPLOYED_BY_SQS


def create_queues(sqs: Any, template: Template) -> dict[str, dict[str, str]]:
    """The template's queues, DLQs first: {logical id: {QueueUrl, Arn, QueueName}}."""
    queues = template.of_type(QUEUE_TYPE)
    made: dict[str, dict[str, str]] = {}
    for logical_id, properties in sorted(queues.items(), key=lambda q: "RedrivePolicy" in q[1]):
        name = template.physical_name(logical_id)
        queue_attributes = {
            key: str(value).lower() if isinstance(value, bool) else str(value)
            for key, value in properties.items()
            if isinstance(value, str | int | bool) and key != "QueueName"
        }
        if "RedrivePolicy" in properties:
            target, _ = properties["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"]
            queue_attributes["RedrivePolicy"] = json.dumps(
                {
                    "deadLetterTargetArn": made[target]["Arn"],
                    "maxReceiveCount": properties["RedrivePolicy"]["maxReceiveCount"],
                }
            )
        url = sqs.create_queue(QueueName=name, Attributes=queue_attributes)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]
        made[logical_id] = {"QueueUrl": url, "Arn": arn["QueueArn"], "QueueName": name}
    return made


def stack_outputs(cloudformation: Any, stack: str) -> dict[str, str]:
    outputs = cloudformation.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    return {output["OutputKey"]: output["OutputValue"] for output in outputs}


def create_outputs_stack(cloudformation: Any, stack: str, outputs: Mapping[str, str]) -> None:
    """A stack named `stack` whose only resource is a placeholder and whose outputs are these."""
    template = {
        "Resources": {"LocalStack": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    cloudformation.create_stack(StackName=stack, TemplateBody=json.dumps(template))


def register_task_definition(ecs: Any, template: Template, service_id: str) -> tuple[str, str, str]:
    """The service's task definition registered: (family, container name, log stream prefix)."""
    reference = template.resources[service_id]["Properties"]["TaskDefinition"]["Ref"]
    properties = template.resources[reference]["Properties"]
    family = template.physical_name(reference)
    [container] = properties["ContainerDefinitions"]
    log_options = container.get("LogConfiguration", {}).get("Options", {})
    ecs.register_task_definition(
        family=family,
        requiresCompatibilities=properties.get("RequiresCompatibilities", ["FARGATE"]),
        networkMode=properties.get("NetworkMode", "awsvpc"),
        cpu=str(properties.get("Cpu", "256")),
        memory=str(properties.get("Memory", "512")),
        containerDefinitions=[
            {
                "name": container["Name"],
                "image": "queue-worker-local",  # the fleet runs on this machine instead
                "memory": int(container.get("Memory", properties.get("Memory", 512))),
                "essential": True,
            }
        ],
    )
    return family, container["Name"], str(log_options.get("awslogs-stream-prefix", "worker"))


def run_service(ecs: Any, ec2: Any, cluster: str, service: str, task_definition: str) -> str:
    """The cluster, the service (desired 1) and its one task, which this machine's fleet
    stands for, in a subnet of the endpoint's default VPC; the task's id."""
    [subnet, *_] = ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])[
        "Subnets"
    ]
    [group] = ec2.describe_security_groups(
        Filters=[
            {"Name": "vpc-id", "Values": [subnet["VpcId"]]},
            {"Name": "group-name", "Values": ["default"]},
        ]
    )["SecurityGroups"]
    network = {"subnets": [subnet["SubnetId"]], "securityGroups": [group["GroupId"]]}
    ecs.create_cluster(clusterName=cluster)
    ecs.create_service(
        cluster=cluster,
        serviceName=service,
        taskDefinition=task_definition,
        desiredCount=1,
        launchType="FARGATE",
    )
    [task] = ecs.run_task(
        cluster=cluster,
        taskDefinition=task_definition,
        count=1,
        launchType="FARGATE",
        startedBy=f"ecs-svc/{service}",
        networkConfiguration={"awsvpcConfiguration": network},
    )["tasks"]
    return str(task["taskArn"].rsplit("/", 1)[-1])


def register_scaling(
    autoscaling: Any, template: Template, service_id: str, cluster: str, service: str
) -> None:
    """The service's scalable target with the template's min and max (no policy, no scheduled
    action: moto does not run them), so that `pause` and `continue` have it to suspend and
    resume: the target whose ResourceId names the service `service_id` (logical id; the Spot
    fallback's service has a target of its own)."""
    for properties in template.of_type("AWS::ApplicationAutoScaling::ScalableTarget").values():
        resource = json.dumps(properties.get("ResourceId"))
        if f'"{service_id}"' not in resource:
            continue
        autoscaling.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=f"service/{cluster}/{service}",
            ScalableDimension=properties["ScalableDimension"],
            MinCapacity=int(properties["MinCapacity"]),
            MaxCapacity=int(properties["MaxCapacity"]),
        )


def put_alarms(
    cloudwatch: Any,
    template: Template,
    queue_template: Template,
    queue_outputs: Mapping[str, str],
) -> tuple[str, ...]:
    """The worker template's alarms: names, metrics (the queue stack's outputs they import, and
    the cluster's and service's names, resolved) and thresholds; their actions (SNS, scaling)
    are left out."""

    def resolve(value: Any) -> Any:
        if isinstance(value, list):
            return [resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "Fn::GetStackOutput" in value:
            imported = value["Fn::GetStackOutput"]
            if imported.get("StackName") != queue_template.stack:
                raise LookupError(imported)
            return queue_outputs[imported["OutputName"]]
        if value.get("Ref") in template.resources:  # the cluster (memory alarm)
            return template.physical_name(value["Ref"])
        if "Fn::GetAtt" in value and value["Fn::GetAtt"][1] == "Name":  # the service
            return template.physical_name(value["Fn::GetAtt"][0])
        if any(key.startswith("Fn::") or key == "Ref" for key in value):
            raise LookupError(value)
        return {key: resolve(item) for key, item in value.items()}

    names = []
    for logical_id, properties in template.of_type(ALARM_TYPE).items():
        name = template.physical_name(logical_id)
        settings = {key: resolve(properties[key]) for key in ALARM_PROPERTIES if key in properties}
        cloudwatch.put_metric_alarm(AlarmName=name, ActionsEnabled=False, **settings)
        names.append(name)
    return tuple(names)


def evaluate_alarms(cloudwatch: Any, sqs: Any, stack: LocalStack) -> None:
    """Set the state of the alarms on a queue's depth (ApproximateNumberOfMessagesVisible of
    one queue) from the queue's count now: moto does not evaluate alarms."""
    alarms = cloudwatch.describe_alarms(AlarmNames=list(stack.alarms)).get("MetricAlarms", [])
    urls = {url.rsplit("/", 1)[-1]: url for url in (stack.queue_url, stack.dlq_url)}
    for alarm in alarms:
        dimensions = {d["Name"]: d["Value"] for d in alarm.get("Dimensions", [])}
        url = urls.get(dimensions.get("QueueName", ""))
        compare = COMPARISONS.get(alarm.get("ComparisonOperator", ""))
        if (alarm.get("Namespace"), alarm.get("MetricName")) != QUEUE_DEPTH_METRIC or not (
            url and compare
        ):
            continue
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
        )["Attributes"]
        depth = int(attributes["ApproximateNumberOfMessages"])
        threshold = float(alarm["Threshold"])
        state = "ALARM" if compare(depth, threshold) else "OK"
        if alarm.get("StateValue") != state:
            cloudwatch.set_alarm_state(
                AlarmName=alarm["AlarmName"],
                StateValue=state,
                StateReason=f"{dimensions['QueueName']}: {depth} visible, threshold "
                f"{alarm['ComparisonOperator']} {threshold:g} (evaluated by local-stack)",
            )


class LogShipper:
    """Sends lines to a log stream (PutLogEvents) from a thread, every LOG_SHIPPING_SECONDS."""

    def __init__(self, logs: Any, group: str, stream: str) -> None:
        self._logs, self._group, self._stream = logs, group, stream
        self._lines: queue.Queue[tuple[int, str]] = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def put(self, line: str) -> None:
        """A line to ship, stamped now."""
        if line.strip():
            self._lines.put((int(time.time() * 1000), line))

    def close(self) -> None:
        """Ship what is left, then stop."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(LOG_SHIPPING_SECONDS):
            self._ship()
        self._ship()

    def _ship(self) -> None:
        events = []
        while not self._lines.empty():
            timestamp, message = self._lines.get()
            events.append({"timestamp": timestamp, "message": message})
        for start in range(0, len(events), 1000):
            with contextlib.suppress(ClientError, OSError):  # the server may be stopping
                self._logs.put_log_events(
                    logGroupName=self._group,
                    logStreamName=self._stream,
                    logEvents=events[start : start + 1000],
                )


def ready_lines(stack: LocalStack, exports: str) -> list[str]:
    """The block that tells the user what to run in another terminal."""
    return [
        f"local stack of {stack.env} ready at {stack.endpoint_url}",
        f"  {stack.queue_stack}: {stack.queue_stack_deployed_by}",
        f"  {stack.worker_stack}: cluster {stack.worker_outputs[CLUSTER_OUTPUT]}, service "
        f"{stack.worker_outputs[SERVICE_OUTPUT]}, log group {stack.log_group}, "
        f"{len(stack.alarms)} alarms",
        "In another terminal:",
        f"  {exports}",
        *[f"  queue-worker {verb} --env {stack.env}" for verb in OPERATOR_VERBS],
        "Ctrl-C here stops the fleet and the server.",
    ]


def exports_line(stack: LocalStack) -> str:
    """`export AWS_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=testing ... AWS_REGION=...`."""
    variables = {
        "AWS_ENDPOINT_URL": stack.endpoint_url,
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": stack.region,
    }
    return "export " + " ".join(f"{name}={value}" for name, value in variables.items())


def start_server(port: int) -> CountingMoto:
    """moto's server on 127.0.0.1:`port`; OpsError when the port is taken (checked first:
    werkzeug prints its own lines and exits when it cannot bind)."""
    in_use = OpsError(
        f"port {port} on 127.0.0.1 is in use (another local-stack?): stop it or pass --port"
    )
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                raise in_use from None
            raise
    try:
        return CountingMoto(port)
    except SystemExit:  # taken in between
        raise in_use from None


def serve(args: argparse.Namespace) -> None:
    """Stand up, run the fleet, print the ready block, then serve until interrupted."""
    assembly = _cli.synthesized(Path(args.cdk_out or Path(args.project) / "cdk.out"), args.env)
    _, template_env = read_templates(assembly, args.env)
    fake_aws_env()
    os.environ["MOTO_ECS_SERVICE_RUNNING"] = "1"  # moto's service reports its task running
    # Quiet: no line per resource type moto's CloudFormation skips, no traceback per call it
    # does not implement (redrive's move task: it falls back to copying).
    logging.getLogger("moto").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)
    warnings.filterwarnings("ignore", message=".*not supported by moto's CloudFormation")
    with contextlib.ExitStack() as resources:
        server = start_server(args.port)
        resources.callback(server.close)
        stack = stand_up(Path(assembly).parent, args.env, server.url)
        client = partial(boto3.client, region_name=stack.region, endpoint_url=server.url)
        sqs, cloudwatch = client("sqs"), client("cloudwatch")
        shipper = LogShipper(client("logs"), stack.log_group, stack.log_stream)
        resources.callback(shipper.close)
        env = fleet_environment(
            template_env,
            local_overrides(args),
            stack.queue_url,
            stack.dlq_url,
            server.url,
            Path(args.run_dir),
        )
        fleet, _ = start_fleet(resources, env, FleetLog(ship=shipper.put))
        sent = enqueue_batch(sqs, stack.queue_url, args)
        say(
            f"enqueued {len(sent)} messages: {args.messages} good, {args.poison} poison, "
            f"{args.malformed} malformed"
        )
        exports = exports_line(stack)
        if args.json:
            print_json({**asdict(stack), "exports": exports, "commands": list(OPERATOR_VERBS)})
        else:
            print("\n".join(ready_lines(stack, exports)))
        sys.stdout.flush()
        while fleet.poll() is None:
            evaluate_alarms(cloudwatch, sqs, stack)
            time.sleep(ALARM_EVALUATION_SECONDS)
        raise OpsError(f"the fleet exited ({fleet.returncode}); the server is stopped")


def add_arguments(parser: Parser) -> None:
    """The command line."""
    parser.add_argument("--env", default="dev", help="environment name (default dev)")
    parser.add_argument("--cdk-out", help="synthesized assemblies (default: the project's cdk.out)")
    parser.add_argument(
        "--port",
        type=_cli.positive_int,
        default=DEFAULT_PORT,
        help=f"moto's port on 127.0.0.1 (default {DEFAULT_PORT})",
    )
    add_batch_arguments(parser, messages=20, poison=2, malformed=1)
    parser.add_argument("--json", action="store_true", help="print the ready block as JSON")
    parser.add_argument("--run-dir", default="/tmp/queue-worker-local", help=argparse.SUPPRESS)


def execute(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM (exit 130, after stopping the fleet and the server)."""

    def interrupted(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    try:
        serve(args)
    except KeyboardInterrupt:
        raise _cli.Interrupted("the fleet and the embedded AWS are stopped") from None
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m scripts.devtools.local_stack`."""
    return _cli.main(sys.modules[__name__], argv)


if __name__ == "__main__":
    sys.exit(main())
