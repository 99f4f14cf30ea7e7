"""Clarion's one configuration object.

Values come, highest priority first, from command-line flags, `CLARION_*` environment variables, the TOML file
named by `--config` / `CLARION_CONFIG`, and the defaults below (docs/configuration.md lists them all).
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import tomllib
import types
import typing
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from clarion.analytics.config import AnalyticsSettings, CostSettings, RetentionSettings
from clarion.campaigns.config import CampaignSettings
from clarion.channels.config import DeliverySettings
from clarion.coordination.config import CoordinationSettings
from clarion.jobs.config import JobSettings
from clarion.journeys.config import JourneySettings
from clarion.otp.config import OtpSettings
from clarion.outbound.config import OutboundSettings
from clarion.queue.config import QueueSettings
from clarion.recommenders.config import RecommenderSettings
from clarion.settings_model import SettingsModel
from clarion.streams.config import StreamSettings
from clarion.templates.config import TemplateSettings

# The --config file of the Settings being built; CLARION_CONFIG is the fallback.
_config_file: ContextVar[str | None] = ContextVar("clarion_config_file", default=None)


class AccessKey(SettingsModel):
    """An access key pair a client signs with, and what it may do."""

    access_key_id: str
    secret_access_key: str
    description: str = ""
    # Project (application) ids this key may touch; "*" means every project, including creating new ones.
    projects: list[str] = Field(default_factory=lambda: ["*"])
    # Pinpoint operation names this key may call (e.g. ["SendMessages", "SendUsersMessages"]); "*" means all.
    operations: list[str] = Field(default_factory=lambda: ["*"])
    # Source networks (CIDR) the key is accepted from; requests from elsewhere are refused and logged.
    allow_networks: list[str] = Field(default_factory=lambda: ["0.0.0.0/0", "::/0"])
    # This key's own request rate and burst (docs/security.md); unset: `rate_limit`'s. 0 requests/s: unlimited.
    requests_per_second: float | None = Field(default=None, ge=0)
    burst: int | None = Field(default=None, ge=1)

    @field_validator("allow_networks")
    @classmethod
    def _valid_networks(cls, networks: list[str]) -> list[str]:
        return _valid_cidrs(networks)


class RateLimitSettings(SettingsModel):
    """Each access key's token bucket: `requests_per_second` refill, up to `burst` at once; 0 turns limits off."""

    requests_per_second: float = Field(default=1000, ge=0)
    burst: int = Field(default=2000, ge=1)


def _valid_cidrs(networks: list[str]) -> list[str]:
    for network in networks:
        ipaddress.ip_network(network, strict=False)
    return networks


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CLARION_", env_nested_delimiter="__", extra="forbid")

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("clarion-data")
    # Empty: the embedded SQLite store in data_dir. Otherwise a postgresql:// URL.
    database_url: str = ""
    # SQLite `synchronous`: NORMAL survives a killed process (every 2xx is committed first); FULL also
    # survives power loss, at some write throughput.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    region: str = "us-east-1"  # ARNs use the region a request was signed for; this one when unsigned
    account_id: str = "000000000000"
    access_keys: list[AccessKey] = Field(default_factory=list)
    # A single key from the environment (CLARION_ACCESS_KEY_ID / CLARION_SECRET_ACCESS_KEY), full access.
    access_key_id: str = ""
    secret_access_key: str = ""
    # Development only: accept any SigV4 credentials without checking the signature (like local AWS
    # emulators). Refused when the server listens beyond loopback.
    insecure_any_credentials: bool = False
    max_clock_skew_seconds: int = 300
    # Reverse proxies (CIDR) whose X-Forwarded-For / X-Forwarded-Proto are believed; none by default, so the
    # client address is the TCP peer's and a header cannot claim another (docs/security.md).
    trusted_proxies: list[str] = Field(default_factory=list)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    access_log: bool = True
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)  # segment engine (docs/segments.md)
    queue: QueueSettings = Field(default_factory=QueueSettings)  # the work queue and its workers (docs/queue.md)
    jobs: JobSettings = Field(default_factory=JobSettings)  # import/export locations (docs/segments.md)
    campaigns: CampaignSettings = Field(default_factory=CampaignSettings)  # the campaign engine (docs/campaigns.md)
    journeys: JourneySettings = Field(default_factory=JourneySettings)  # the journey engine (docs/journeys.md)
    templates: TemplateSettings = Field(default_factory=TemplateSettings)  # render budgets (docs/templates.md)
    outbound: OutboundSettings = Field(default_factory=OutboundSettings)  # tenant URLs (docs/security.md)
    recommenders: RecommenderSettings = Field(default_factory=RecommenderSettings)  # docs/recommenders.md
    otp: OtpSettings = Field(default_factory=OtpSettings)  # one-time passwords (docs/messages.md)
    streams: StreamSettings = Field(default_factory=StreamSettings)  # event stream sinks (docs/event-streams.md)
    costs: CostSettings = Field(default_factory=CostSettings)  # prices of the cost view (docs/analytics.md)
    retention: RetentionSettings = Field(
        default_factory=RetentionSettings
    )  # how long rows are kept (docs/analytics.md)
    # Processes sharing a store: leader leases, shared rate buckets (docs/operations.md#several-processes)
    coordination: CoordinationSettings = Field(default_factory=CoordinationSettings)

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, networks: list[str]) -> list[str]:
        return _valid_cidrs(networks)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        config_file = _config_file.get() or os.environ.get("CLARION_CONFIG")
        if config_file:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=Path(config_file)))
        return tuple(sources)

    @model_validator(mode="after")
    def _store_is_known(self) -> Settings:
        """Any other URL would silently fall back to the embedded store in data_dir."""
        if self.database_url and not self.uses_postgres:
            scheme = urlsplit(self.database_url).scheme or "none"
            raise ValueError(
                "database_url must be empty (the embedded SQLite store) or a postgresql:// URL; "
                f"its scheme is {scheme!r}"
            )
        return self

    @property
    def uses_postgres(self) -> bool:
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def sqlite_path(self) -> Path:
        return self.data_dir / "clarion.sqlite3"

    def all_access_keys(self) -> list[AccessKey]:
        keys = list(self.access_keys)
        if self.access_key_id and self.secret_access_key:
            keys.append(AccessKey(access_key_id=self.access_key_id, secret_access_key=self.secret_access_key))
        return keys


class SettingsError(ValueError):
    """Settings Clarion refuses to start with; `problems` names each offending key in dotted form."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Build Settings; flags given on the command line (non-None overrides) win over everything else.

    Raises SettingsError naming every unknown key (with the closest known one), wrong value and inconsistency.
    """
    token = _config_file.set(str(config_file) if config_file is not None else None)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as error:
        raise SettingsError(settings_problems(error)) from None
    except tomllib.TOMLDecodeError as error:
        where = config_file or os.environ.get("CLARION_CONFIG")
        raise SettingsError([f"{where}: not valid TOML ({error})"]) from None
    finally:
        _config_file.reset(token)


def settings_problems(error: ValidationError) -> list[str]:
    """One line per problem, keyed as the TOML file writes it (`delivery.smtp.port`)."""
    problems = []
    for item in error.errors():
        location = item["loc"]
        key = _dotted(location)
        if item["type"] == "extra_forbidden":
            known = _known_keys(location[:-1])
            close = difflib.get_close_matches(str(location[-1]), known, n=1, cutoff=0.6)
            hint = f"; did you mean {_dotted((*location[:-1], close[0]))}?" if close else ""
            problems.append(f"{key}: unknown setting{hint}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        problems.append(f"{key}: {message}" if key else message)
    return problems


def _dotted(location: tuple[int | str, ...]) -> str:
    dotted = ""
    for part in location:
        dotted += f"[{part}]" if isinstance(part, int) else f".{part}" if dotted else str(part)
    return dotted


def _known_keys(location: tuple[int | str, ...]) -> list[str]:
    """The setting names a table at `location` accepts (list positions and mapping keys pass through)."""
    model: type[BaseModel] | None = Settings
    for part in location:
        if model is None:
            return []
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = settings_table(field.annotation) if field is not None else None
    return list(model.model_fields) if model is not None else []


def settings_table(annotation: Any) -> type[BaseModel] | None:
    """The settings model a field holds, directly or inside Optional, list or dict."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, dict):
        for argument in typing.get_args(annotation):
            found = settings_table(argument)
            if found is not None:
                return found
    return None


REDACTED = "********"
# Setting names (and names inside free-form tables such as HTTP headers) whose values are credentials.
_SECRET_NAME = re.compile(r"password|secret|token$|api[_-]?key|private_key$|^key$|authorization", re.IGNORECASE)


def redacted(settings: Settings) -> dict[str, Any]:
    """The resolved settings as plain data, every credential replaced: what `clarion config show` prints."""
    return _redact(settings.model_dump(mode="json"))


def _redact(value: Any, name: str = "") -> Any:
    if isinstance(value, dict):
        return {key: _redact(item, key) for key, item in value.items()}
    if isinstance(value, list):
        return [_redact(item, name) for item in value]
    if not isinstance(value, str) or not value:
        return value
    if _SECRET_NAME.search(name):
        return REDACTED
    parts = urlsplit(value)
    if parts.password:  # postgresql://user:secret@host/db and the like
        return value.replace(f":{parts.password}@", f":{REDACTED}@", 1)
    return value
