"""`python -m alerting`: the same as `plantmesh alerting`."""

from alerting.cli import register
from plantmesh.cli import service_main


def main() -> int:
    return service_main("alerting", register)


if __name__ == "__main__":
    raise SystemExit(main())
