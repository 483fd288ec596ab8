"""Who may call the local AWS APIs: each role's session credentials (a function, the SageMaker execution role), and
the local admin identity the CLI, provisioning and tests use.

Role credentials look like STS's (``ASIA…`` key, secret, session token) and are minted per stack start, as Lambda
and SageMaker assume the role for each environment; the local stack never gives a function the host's credentials.
Signatures are not verified (README: not enforced): the access key and its session token identify the caller.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import asdict, dataclass
from typing import Any

#: The local admin identity: any request signed with one of these access keys (``testing`` is moto's convention,
#: which the tests use) may do anything, as an account's administrator could.
ADMIN_ACCESS_KEYS = frozenset({"local", "testing"})
ADMIN_SECRET_KEY = "local"


@dataclass(frozen=True)
class RoleCredentials:
    role_arn: str
    session_name: str
    access_key_id: str
    secret_access_key: str
    session_token: str

    @property
    def role_name(self) -> str:
        return self.role_arn.rsplit("/", 1)[-1]

    @property
    def session_arn(self) -> str:
        account = self.role_arn.split(":")[4]
        return f"arn:aws:sts::{account}:assumed-role/{self.role_name}/{self.session_name}"

    def environment(self) -> dict[str, str]:
        """The variables Lambda sets for a function's role."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def to_json(self) -> dict[str, str]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoleCredentials:
        return cls(**{k: str(data[k]) for k in cls.__dataclass_fields__})


def mint(role_arn: str, session_name: str) -> RoleCredentials:
    """Fresh session credentials for ``role_arn`` (a new key, secret and token at every call)."""
    digest = hashlib.sha256(f"{role_arn}/{session_name}/{secrets.token_hex(8)}".encode()).hexdigest().upper()
    return RoleCredentials(
        role_arn=role_arn,
        session_name=session_name,
        access_key_id=f"ASIA{digest[:16]}",
        secret_access_key=secrets.token_urlsafe(30),
        session_token=secrets.token_urlsafe(48),
    )
