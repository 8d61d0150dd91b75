"""`plantmesh alerts list|show|ack|shelve|unshelve|resolve|comment|assign`: the alarm API from a
terminal. The API's address comes from --api or PLANTMESH_API_URL, the token from --token or
PLANTMESH_API_TOKEN; what the API refuses is printed with its reason, exit code 1."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

import httpx

from alerting.backtest_cli import register_history_backtest
from plantmesh.cli import Subparsers

DEFAULT_API = "http://127.0.0.1:8600"


def register_alerts(subparsers: Subparsers) -> None:
    alerts = subparsers.add_parser("alerts", help="list, inspect and act on alarms (the API)")
    alerts.add_argument("--api", default=os.environ.get("PLANTMESH_API_URL", DEFAULT_API))
    alerts.add_argument("--token", default=os.environ.get("PLANTMESH_API_TOKEN"))
    alerts.add_argument("--json", action="store_true", help="print the API's JSON")
    commands = alerts.add_subparsers(dest="alerts_command", metavar="COMMAND", required=True)

    listing = commands.add_parser("list", help="alarms, newest first")
    for name in ("plant", "line", "machine", "issue-type", "state", "priority", "since", "until"):
        listing.add_argument(f"--{name}")
    listing.add_argument("--open", action="store_true", help="only occurrences not over yet")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=_list)

    show = commands.add_parser("show", help="one alarm: evidence, timeline, deliveries")
    show.add_argument("alarm_id")
    show.set_defaults(func=_show)

    def action(name: str, path: str, help_text: str, *fields: tuple[str, dict[str, Any]]) -> None:
        parser = commands.add_parser(name, help=help_text)
        parser.add_argument("alarm_id")
        for flag, options in fields:
            parser.add_argument(flag, **options)
        parser.set_defaults(func=_act, path=path)

    action("ack", "acknowledge", "acknowledge", ("--comment", {}))
    action(
        "shelve",
        "shelve",
        "hide it for a time (or until it clears: --one-shot)",
        ("--reason", {"required": True}),
        ("--for", {"dest": "duration", "type": _duration, "metavar": "30m"}),
        ("--one-shot", {"action": "store_true"}),
    )
    action("unshelve", "unshelve", "show it again", ("--reason", {}))
    action("resolve", "resolve", "the problem is fixed", ("--comment", {}))
    action("comment", "comment", "add a note to its trail", ("--text", {"required": True}))
    action("assign", "assign", "who works on it", ("--to", {"dest": "assignee"}))
    register_history_backtest(commands)


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(
            f"expected a duration like 90s, 30m, 2h: {text!r}"
        ) from None


def _client(args: argparse.Namespace) -> httpx.Client:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    return httpx.Client(base_url=args.api.rstrip("/"), headers=headers, timeout=30, trust_env=False)


def call_api(args: argparse.Namespace, method: str, path: str, **kw: Any) -> Any:
    if not args.token:
        print("no token: --token or PLANTMESH_API_TOKEN", file=sys.stderr)
        raise SystemExit(2)
    try:
        with _client(args) as client:
            answer = client.request(method, f"/api/v1{path}", **kw)
    except httpx.HTTPError as exc:
        print(f"cannot reach the alarm API at {args.api}: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    if answer.status_code >= 400:
        try:
            detail = answer.json().get("detail", answer.text)
        except ValueError:
            detail = answer.text
        print(f"{method} {path}: {answer.status_code} {detail}", file=sys.stderr)
        raise SystemExit(1)
    return answer.json()


def _list(args: argparse.Namespace) -> int:
    params = {
        key: value
        for key, value in {
            "plant": args.plant,
            "line": args.line,
            "machine": args.machine,
            "issue_type": args.issue_type,
            "state": args.state,
            "priority": args.priority,
            "since": args.since,
            "until": args.until,
            "limit": args.limit,
            "open": "true" if args.open else None,
        }.items()
        if value is not None
    }
    rows = call_api(args, "GET", "/alarms", params=params)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'ID':<18} {'STATE':<24} {'PRIORITY':<9} {'ISSUE TYPE':<24} MACHINE / SIGNAL")
    for row in rows:
        where = f"{row['plant']}/{row['area']}/{row['line']}/{row['machine']} {row['signal']}"
        hidden = " (shelved)" if row["shelving"] else ""
        hidden += " (suppressed)" if row["suppressed_by"] else ""
        print(
            f"{row['id'][:18]:<18} {row['state']:<24} {row['priority']:<9} "
            f"{row['issue_type']:<24} {where}{hidden}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    alarm = call_api(args, "GET", f"/alarms/{args.alarm_id}")
    _print_alarm(args, alarm)
    return 0


def _print_alarm(args: argparse.Namespace, alarm: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(alarm, indent=2))
        return
    asset = f"{alarm['plant']}/{alarm['area']}/{alarm['line']}/{alarm['machine']}"
    print(f"{alarm['id']}  {alarm['state']}  [{alarm['priority']}] {alarm['issue_type']}")
    print(f"  {asset} {alarm['signal']}  rule {alarm['rule']} v{alarm['rule_version']}")
    print(f"  evidence: {alarm['evidence'].get('summary', '')}")
    for key in ("time_to_acknowledge_s", "time_to_resolve_s", "assignee", "escalation_level"):
        if alarm.get(key) is not None:
            print(f"  {key}: {alarm[key]}")
    print("  timeline:")
    for entry in alarm["timeline"]:
        text = f"  {entry['text']}" if entry.get("text") else ""
        print(
            f"    {entry['at']}  {entry['action']:<20} {entry['actor']:<20} -> {entry['to_state']}{text}"
        )
    if alarm["deliveries"]:
        print("  deliveries:")
        for d in alarm["deliveries"]:
            level = f"level {d['level']}" if d["level"] else ""
            print(
                f"    {d['kind']:<13} {level:<8} {d['contact']:<16} {d['channel']:<8} {d['status']}"
            )


def _act(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {}
    if args.path in ("acknowledge", "resolve") and args.comment:
        body["comment"] = args.comment
    elif args.path == "shelve":
        body = {"reason": args.reason}
        if args.one_shot:
            body["one_shot"] = True
        elif args.duration is None:
            print("shelve: give --for 30m, or --one-shot", file=sys.stderr)
            return 2
        else:
            body["duration_s"] = args.duration
    elif args.path == "unshelve" and args.reason:
        body["reason"] = args.reason
    elif args.path == "comment":
        body["text"] = args.text
    elif args.path == "assign":
        body["assignee"] = args.assignee
    alarm = call_api(args, "POST", f"/alarms/{args.alarm_id}/{args.path}", json=body or None)
    _print_alarm(args, alarm)
    return 0
