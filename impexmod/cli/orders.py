"""``impexmod orders``: the orders channel from the command line (docs/orders.md)."""

from __future__ import annotations

import click

command = click.Group("orders", help="The orders channel: states, flags, exporters, inbound feeds.")

from impexmod.cli import order_exporters  # noqa: E402

command.add_command(order_exporters.group)
