"""The `optima-bi` command line.

Each subcommand's flags are declared here; its work lives in the subsystem it
belongs to, imported only when that subcommand runs, so `optima-bi --help`
stays fast and no subsystem is loaded that the command does not need. Every
flag falls back to its `OPTIMA_BI_*` variable (settings.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

from optima_bi_mcp import __version__

# subcommand -> "module:function"; the function takes the parsed namespace and
# returns an exit code.
HANDLERS: dict[str, str] = {
    "serve": "optima_bi_mcp.mcp.commands:run_serve",
    "call": "optima_bi_mcp.mcp.commands:run_call",
    "demo": "optima_bi_mcp.mcp.demo:run_demo",
    "seed": "optima_bi_mcp.data.commands:run_seed",
    "backfill": "optima_bi_mcp.data.commands:run_backfill",
    "verify": "optima_bi_mcp.data.commands:run_verify",
    "migrate": "optima_bi_mcp.data.commands:run_migrate",
    "sink": "optima_bi_mcp.cdc.commands:run_sink",
    "login": "optima_bi_mcp.identity.commands:run_login",
    "logout": "optima_bi_mcp.identity.commands:run_logout",
    "whoami": "optima_bi_mcp.identity.commands:run_whoami",
    "dev-idp": "optima_bi_mcp.identity.commands:run_dev_idp",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="optima-bi", description="Business answers for AI assistants, as an MCP server."
    )
    parser.add_argument("--version", action="version", version=f"optima-bi {__version__}")
    parser.add_argument(
        "--log-level", default=None, help="DEBUG, INFO, WARNING (OPTIMA_BI_LOG_LEVEL)"
    )
    parser.add_argument("--log-json", action="store_true", default=None, help="log JSON lines")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser("serve", help="serve MCP over stdio (default) or streamable HTTP")
    serve.add_argument("--http", action="store_true", help="serve streamable HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--sink", action="store_true", help="run the CDC sink in this process")
    _add_principal(serve)
    _add_store(serve)

    call = sub.add_parser("call", help="run one tool through the real server and print it")
    call.add_argument("tool")
    call.add_argument("--args", default="{}", help="tool arguments as a JSON object")
    _add_principal(call)
    _add_store(call)
    shape = call.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print exactly the structured result")
    shape.add_argument("--pretty", action="store_true", help="print tables")

    demo = sub.add_parser("demo", help="seed if empty, then run a scripted MCP session")
    _add_store(demo)

    seed = sub.add_parser("seed", help="generate the synthetic commerce dataset")
    _add_store(seed)
    seed.add_argument("--target", help="write to this PostgreSQL database instead of the store")
    seed.add_argument("--seed", type=int, default=42)
    seed.add_argument("--merchants", type=int, default=None)
    seed.add_argument("--orders", type=int, default=None)
    seed.add_argument("--until", default=None, help="last day of data, YYYY-MM-DD (yesterday, UTC)")
    seed.add_argument("--if-empty", action="store_true", help="do nothing if the store has data")

    for name, text in (
        ("backfill", "load the current state of the source into the store"),
        ("verify", "compare the store with the source, table by table"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("--source", required=True, help="postgresql://… (OPTIMA_BI_SOURCE)")
        _add_store(cmd)

    migrate = sub.add_parser("migrate", help="apply pending store migrations")
    _add_store(migrate)

    sink = sub.add_parser("sink", help="consume change topics into the store")
    _add_store(sink)
    sink.add_argument("--bootstrap", default=None, help="Kafka bootstrap servers")
    sink.add_argument("--group", default=None, help="consumer group")
    sink.add_argument("--topic-prefix", default=None, help="Debezium topic.prefix")
    sink.add_argument(
        "--metrics-port", type=int, default=None, help="serve Prometheus /metrics on 127.0.0.1"
    )

    for name, text in (
        ("login", "log in with a device code"),
        ("logout", "log out and revoke tokens"),
        ("whoami", "show who is logged in"),
    ):
        sub.add_parser(name, help=text)
    idp = sub.add_parser("dev-idp", help="a development OAuth/OIDC provider on loopback")
    idp.add_argument("--port", type=int, default=9400)
    idp.add_argument("--host", default="127.0.0.1")
    idp.add_argument(
        "--user",
        action="append",
        metavar="NAME=admin|merchant:<uuid>",
        help="a user who can log in (repeatable)",
    )
    idp.add_argument("--users-file", help='JSON object {"name": "admin" | "merchant:<uuid>"}')
    idp.add_argument("--token-lifetime", type=int, default=3600, help="access token seconds")
    idp.add_argument("--refresh-lifetime", type=int, default=30 * 24 * 3600)
    idp.add_argument("--device-code-lifetime", type=int, default=600)
    idp.add_argument("--interval", type=int, default=5, help="device flow polling interval (s)")
    idp.add_argument("--signing-key", help="private JWK file of the signing key (made if missing)")
    return parser


def _add_store(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--store", default=None, help="store DSN (OPTIMA_BI_STORE)")


def _add_principal(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--as",
        dest="principal",
        default=None,
        metavar="admin|merchant:<uuid>",
        help="act as this principal (local processes only; refused with an issuer)",
    )


def resolve(command: str) -> Callable[[argparse.Namespace], int]:
    module_name, _, func = HANDLERS[command].partition(":")
    return getattr(importlib.import_module(module_name), func)  # type: ignore[no-any-return]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from optima_bi_mcp.logs import configure_logging

    configure_logging(level=args.log_level, json_lines=args.log_json)
    try:
        return resolve(args.command)(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
