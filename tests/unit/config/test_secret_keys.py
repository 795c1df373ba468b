"""Secrets stay secret at synth: ``worker.environment`` refuses secret-looking names, URLs with a
password and AWS credentials (masked, with what to write in ``worker.secrets``), all at once;
``worker.environment_not_secret`` is the escape for a name that only looks secret;
``worker.secrets_kms_key_arns`` names the keys that encrypt the secrets."""

from __future__ import annotations

import pytest

from stacks.config import ConfigError, load_config, secret_words
from tests.unit.config.test_config import ENVIRONMENTS, problems, prod_with

# AWS's documented example credentials (docs.aws.amazon.com), never real ones.
ACCESS_KEY_ID = "AKIAIOSFODNN7EXAMPLE"
SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
KEY_ARN = "arn:aws:kms:ap-northeast-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def environment_problems(environment: dict[str, str], **worker: object) -> list[str]:
    return problems(prod_with(worker={"environment": environment, **worker}))


@pytest.mark.parametrize(
    ("name", "words"),
    [
        ("DB_PASSWORD", ["PASSWORD"]),
        ("SMTP_PASS", ["PASS"]),
        ("APP_SECRET", ["SECRET"]),
        ("GITHUB_TOKEN", ["TOKEN"]),
        ("STRIPE_API_KEY", ["API_KEY"]),
        ("JWT_PRIVATE_KEY", ["PRIVATE_KEY"]),
        ("APP_KEY", ["APP_KEY"]),
        ("GOOGLE_CREDENTIALS", ["CREDENTIALS"]),
        ("LOG_LEVEL", []),
        ("TOKENIZER_MODEL", []),
        ("CACHE_KEY_PREFIX", []),
        ("PASSENGER_COUNT", []),
        ("KEYBOARD", []),
    ],
)
def test_secret_words_are_whole_words_of_the_name(name: str, words: list[str]) -> None:
    assert secret_words(name) == words


def test_a_secret_looking_name_is_refused_with_its_value_masked_and_the_way_to_write_it() -> None:
    (message,) = environment_problems({"DB_PASSWORD": "hunter2hunter2"})
    assert message.startswith("environments.prod.worker.environment.DB_PASSWORD: ")
    assert "hunter2" not in message
    assert "(value masked, 14 characters)" in message
    assert "PASSWORD" in message
    assert '"DB_PASSWORD": "ssm:/PARAMETER/NAME"' in message
    assert '"DB_PASSWORD": "secretsmanager:SECRET-NAME[:json-key]"' in message
    assert "worker.environment_not_secret" in message


@pytest.mark.parametrize(
    "name", ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"]
)
def test_aws_credential_variables_are_refused_whatever_the_escape_says(name: str) -> None:
    (message,) = environment_problems({name: "x" * 12}, environment_not_secret=[name])
    assert f"worker.environment.{name}: (value masked, 12 characters)" in message
    assert "AWS credential" in message and "task role" in message


def test_an_access_key_id_is_refused_under_any_name() -> None:
    (message,) = environment_problems({"PARTNER_ID": f"id={ACCESS_KEY_ID}"})
    assert "worker.environment.PARTNER_ID" in message and "AWS access key id" in message
    assert ACCESS_KEY_ID not in message and "task role" in message


def test_a_secret_key_is_refused_beside_a_key_name_or_an_access_key_id() -> None:
    found = environment_problems({"PARTNER_KEY": SECRET_ACCESS_KEY})
    assert any("AWS secret access key" in p for p in found), found
    found = environment_problems({"PARTNER_ID": ACCESS_KEY_ID, "PARTNER_S": SECRET_ACCESS_KEY})
    assert any("PARTNER_S" in p and "AWS secret access key" in p for p in found), found
    assert all(SECRET_ACCESS_KEY not in p for p in found)


def test_forty_characters_alone_or_a_hash_under_a_key_name_are_not_credentials() -> None:
    config = load_config(
        prod_with(
            worker={
                "environment": {
                    "RELEASE": SECRET_ACCESS_KEY,  # no key-like name, no access key id beside it
                    "CACHE_KEY": "0123456789abcdef0123456789abcdef01234567",  # a git hash
                }
            }
        ),
        "prod",
    )
    assert config.worker.environment["RELEASE"] == SECRET_ACCESS_KEY


def test_a_url_with_a_password_is_refused_one_without_is_accepted() -> None:
    (message,) = environment_problems(
        {"DATABASE_URL": "mysql://app:s3cret@db:3306/app", "REDIS_URL": "redis://cache:6379/0"}
    )
    assert "worker.environment.DATABASE_URL" in message and "URL with a password" in message
    assert "s3cret" not in message


def test_every_problem_is_reported_at_once_with_the_others() -> None:
    found = problems(
        prod_with(
            worker={
                "processes": 0,
                "environment": {"DB_PASSWORD": "a", "API_TOKEN": "b", "LOG_LEVEL": "info"},
            }
        )
    )
    keys = sorted(p.split(":")[0] for p in found)
    assert keys == [
        "environments.prod.worker.environment.API_TOKEN",
        "environments.prod.worker.environment.DB_PASSWORD",
        "environments.prod.worker.processes",
    ]


def test_the_escape_accepts_a_name_that_only_looks_secret() -> None:
    config = load_config(
        prod_with(
            worker={
                "environment": {"TOKEN_TTL_SECONDS": "3600", "PASSWORD_MIN_LENGTH": "12"},
                "environment_not_secret": ["TOKEN_TTL_SECONDS", "PASSWORD_MIN_LENGTH"],
            }
        ),
        "prod",
    )
    assert config.worker.environment["TOKEN_TTL_SECONDS"] == "3600"


def test_the_escape_names_only_variables_that_exist() -> None:
    (message,) = environment_problems({"LOG_LEVEL": "info"}, environment_not_secret=["TOKEN"])
    assert message == (
        "environments.prod.worker.environment_not_secret: 'TOKEN' is not a key of "
        "worker.environment; allowed: names of worker.environment"
    )


def test_a_command_line_override_is_checked_too() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(ENVIRONMENTS, "prod", {"worker.environment.API_TOKEN": "abc"})
    (message,) = caught.value.problems
    assert "worker.environment.API_TOKEN: (value masked, 3 characters)" in message


def test_secrets_kms_key_arns_take_key_arns_of_the_region_with_secrets() -> None:
    config = load_config(
        prod_with(
            worker={"secrets": {"DB_PASSWORD": "ssm:/app/db"}, "secrets_kms_key_arns": [KEY_ARN]}
        ),
        "prod",
    )
    assert config.worker.secrets_kms_key_arns == (KEY_ARN,)


@pytest.mark.parametrize(
    ("arns", "secrets", "expected"),
    [
        (
            ["alias/app"],
            {"DB_PASSWORD": "ssm:/app/db"},
            "worker.secrets_kms_key_arns[0]: 'alias/app' is not a KMS key ARN such as "
            "'arn:aws:kms:REGION:ACCOUNT:key/KEY-ID' (not an alias",
        ),
        (
            [KEY_ARN.replace("ap-northeast-1", "us-east-1")],
            {"DB_PASSWORD": "ssm:/app/db"},
            "worker.secrets_kms_key_arns[0]: "
            f"'{KEY_ARN.replace('ap-northeast-1', 'us-east-1')}' is in region 'us-east-1'; "
            "allowed: a key of region 'ap-northeast-1'",
        ),
        (
            [KEY_ARN],
            {},
            "worker.secrets_kms_key_arns: set, but worker.secrets is empty",
        ),
    ],
)
def test_secrets_kms_key_arns_problems(
    arns: list[str], secrets: dict[str, str], expected: str
) -> None:
    found = problems(prod_with(worker={"secrets": secrets, "secrets_kms_key_arns": arns}))
    assert any(expected in p for p in found), found
