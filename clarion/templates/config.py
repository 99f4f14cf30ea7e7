"""Operator settings for message templates: the render budget and the HTML compiler's child process
(docs/templates.md, docs/configuration.md)."""

from __future__ import annotations

from pydantic import Field

from clarion.settings_model import SettingsModel
from clarion.templates import handlebars
from clarion.templates.budget import Limits
from clarion.templates.email_html import configure_worker

_DEFAULT = Limits()


class TemplateSettings(SettingsModel):
    # What rendering one message may spend, all its parts together (steps, time) or each part (output).
    # A render that exceeds any of them fails that recipient with PERMANENT_FAILURE naming the budget.
    max_steps: int = Field(default=_DEFAULT.steps, ge=1)
    max_partial_depth: int = Field(default=_DEFAULT.depth, ge=1, le=200)
    max_output: int = Field(default=_DEFAULT.output, ge=1)  # characters of one rendered part
    max_render_ms: float = Field(default=_DEFAULT.seconds * 1000, gt=0)
    # How long MJML compilation and CSS inlining of one HtmlPart may take in the child process.
    html_compile_timeout_seconds: float = Field(default=10.0, gt=0)

    def apply(self) -> None:
        """Make these the process's limits (the server calls it once at start)."""
        handlebars.configure(
            Limits(
                steps=self.max_steps,
                depth=self.max_partial_depth,
                output=self.max_output,
                seconds=self.max_render_ms / 1000,
            )
        )
        configure_worker(self.html_compile_timeout_seconds)
