"""`python -m ingest`: the same as `plantmesh ingest`."""

from ingest.cli import register
from plantmesh.cli import service_main


def main() -> int:
    return service_main("ingest", register)


if __name__ == "__main__":
    raise SystemExit(main())
