"""`camgrid admin ...`: create, list, disable and enable users."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from camgrid.cli_common import DatabaseUrl, DataDir, cli_settings, cli_store, fail
from camgrid.governance.audit import audit
from camgrid.governance.passwords import WeakPasswordError
from camgrid.governance.roles import ROLES
from camgrid.governance.users import UserError, create_user, list_users, set_disabled

admin_app = typer.Typer(help="Users and administration.", no_args_is_help=True, add_completion=False)

Username = Annotated[str, typer.Option("--username", help="The user's login name.")]
CLI_ACTOR = "cli"


@admin_app.command("create-user")
def create_user_cmd(
    username: Username,
    role: Annotated[str, typer.Option("--role", help=f"One of: {', '.join(ROLES)}.")],
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from standard input (required).")] = False,
    data_dir: DataDir = Path("./data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user. The password is read from stdin so it never shows in the process list."""
    if not password_stdin:
        raise fail("pass --password-stdin and write the password to standard input", 2)
    if role not in ROLES:
        raise fail(f"--role must be one of {', '.join(ROLES)}, not {role!r}", 2)
    password = sys.stdin.readline().rstrip("\r\n")
    with cli_store(cli_settings(data_dir, database_url)) as engine:
        try:
            user = create_user(engine, username, password, role)
        except WeakPasswordError as exc:
            raise fail(f"weak password: {exc}") from None
        except UserError as exc:
            raise fail(str(exc)) from None
        audit(engine, CLI_ACTOR, "user.create", user["username"], {"role": role})
    typer.echo(f"created user {user['username']} ({role})")


@admin_app.command("list-users")
def list_users_cmd(data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None) -> None:
    """List users: name, role, state, last login."""
    with cli_store(cli_settings(data_dir, database_url)) as engine:
        rows = list_users(engine)
    for u in rows:
        state = "disabled" if u["disabled"] else ("must-change-password" if u["must_change_password"] else "active")
        last = u["last_login_at"].isoformat(timespec="seconds") if u["last_login_at"] else "never"
        typer.echo(f"{u['username']:24} {u['role']:9} {state:21} last login {last}")


def _set_disabled(username: str, disabled: bool, data_dir: Path, database_url: str | None) -> None:
    with cli_store(cli_settings(data_dir, database_url)) as engine:
        try:
            user = set_disabled(engine, username, disabled)
        except UserError as exc:
            raise fail(str(exc)) from None
        audit(engine, CLI_ACTOR, "user.disable" if disabled else "user.enable", user["username"])
    typer.echo(f"{'disabled' if disabled else 'enabled'} user {user['username']}")


@admin_app.command("disable-user")
def disable_user_cmd(username: Username, data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None) -> None:
    """Disable a user and revoke all of their tokens."""
    _set_disabled(username, True, data_dir, database_url)


@admin_app.command("enable-user")
def enable_user_cmd(username: Username, data_dir: DataDir = Path("./data"), database_url: DatabaseUrl = None) -> None:
    """Enable a disabled user again."""
    _set_disabled(username, False, data_dir, database_url)
