"""The ``hlarchive`` command: one click group; sub-commands of other packages join through entry points.

The recorder's ``record`` registers itself under the ``hlarchive.commands`` entry point group, so
this package never imports the recorder. User mistakes end as one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points
from typing import Any

import click

from schemas import __version__
from schemas.layout import ArchiveError
from schemas.protocol import ProtocolError
from schemas.rows import FrameError
from schemas.subscriptions import SubscriptionError

USER_ERRORS: tuple[type[BaseException], ...] = (ArchiveError, SubscriptionError, ProtocolError, FrameError)


class Group(click.Group):
    """Loads plugin commands lazily and turns known errors into one line, exit 2 (``--debug``: traceback)."""

    def _plugins(self) -> dict[str, Any]:
        found = {}
        for ep in entry_points(group="hlarchive.commands"):
            found[ep.name] = ep
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._plugins()))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        command = super().get_command(ctx, name)
        if command is None and name in self._plugins():
            command = self._plugins()[name].load()
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except USER_ERRORS as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"Error: {exc}", err=True)
            ctx.exit(2)


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.version_option(__version__, prog_name="hlarchive")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Record Hyperliquid websocket data to Parquet, query it with SQL, replay it through the SDK's callbacks."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def run() -> None:  # pragma: no cover - console script shim
    sys.exit(main())
