"""`plantmesh incidents list|show`: network incidents from a terminal, through the alarm API
(the same --api/PLANTMESH_API_URL and --token/PLANTMESH_API_TOKEN as `plantmesh alerts`). Act on
an incident as on any alarm: `plantmesh alerts ack <its alarm id>`."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

from alerting.api.client_cli import DEFAULT_API, call_api
from plantmesh.cli import Subparsers


def register_incidents_client(subparsers: Subparsers) -> None:
    incidents = subparsers.add_parser(
        "incidents", help="network incidents: the same issue in several plants (the API)"
    )
    incidents.add_argument("--api", default=os.environ.get("PLANTMESH_API_URL", DEFAULT_API))
    incidents.add_argument("--token", default=os.environ.get("PLANTMESH_API_TOKEN"))
    incidents.add_argument("--json", action="store_true", help="print the API's JSON")
    commands = incidents.add_subparsers(dest="incidents_command", metavar="COMMAND", required=True)
    listing = commands.add_parser("list", help="incidents, newest first")
    listing.add_argument("--open", action="store_true", help="only those still open")
    listing.add_argument("--issue-type")
    listing.add_argument("--machine-class")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(func=_list)
    show = commands.add_parser("show", help="one incident: explanation, members, timeline")
    show.add_argument("incident_id")
    show.set_defaults(func=_show)


def _list(args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"limit": args.limit}
    if args.open:
        params["open"] = "true"
    if args.issue_type:
        params["issue_type"] = args.issue_type
    if args.machine_class:
        params["machine_class"] = args.machine_class
    rows = call_api(args, "GET", "/incidents", params=params)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'ID':<24} {'OPEN':<5} {'STATE':<24} {'MEMBERS':>7}  SUMMARY")
    for row in rows:
        is_open = "yes" if row["open"] else "no"
        print(
            f"{row['id']:<24} {is_open:<5} {row['state'] or '-':<24} {row['members']:>7}  "
            f"{row['summary']}"
        )
    return 0


def _show(args: argparse.Namespace) -> int:
    incident = call_api(args, "GET", f"/incidents/{args.incident_id}")
    if args.json:
        print(json.dumps(incident, indent=2))
        return 0
    print(f"{incident['id']}  {incident['state']}  [{incident['severity']}]")
    print(f"  {incident['summary']}")
    print(f"  alarm {incident['alarm_id']} (act on it with `plantmesh alerts`)")
    print("  members:")
    for member in incident["member_list"]:
        alarm = member["alarm"]
        state = f"alarm {alarm['id']} {alarm['state']}" if alarm else "alarm not recorded yet"
        cleared = f", cleared {member['cleared_at']}" if member["cleared_at"] else ""
        print(
            f"    {member['raised_at']}  {member['plant']}/{member['line']}/{member['machine']}"
            f"{cleared}: {member['summary']} ({state})"
        )
    if incident["alarm"]:
        print("  timeline:")
        for entry in incident["alarm"]["timeline"]:
            text = f" {entry['text']}" if entry["text"] else ""
            print(f"    {entry['at']}  {entry['action']} by {entry['actor']}{text}")
    return 0
