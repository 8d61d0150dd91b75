"""`python -m edge_agent`: the same as `plantmesh agent`."""

from edge_agent.cli import register
from plantmesh.cli import service_main


def main() -> int:
    return service_main("agent", register)


if __name__ == "__main__":
    raise SystemExit(main())
