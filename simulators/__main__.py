"""`python -m simulators`: the same as `plantmesh sim`."""

from plantmesh.cli import service_main
from simulators.cli import register


def main() -> int:
    return service_main("sim", register)


if __name__ == "__main__":
    raise SystemExit(main())
