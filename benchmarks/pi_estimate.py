"""How much slower a Raspberry Pi 4 core runs our kind of Python than this machine's: the N-body
benchmark (the Computer Language Benchmarks Game's n-body, 5 bodies, dt 0.01), timed here on
one core.

    .venv/bin/python benchmarks/pi_estimate.py [--steps 5000000]

Reference: the same benchmark with 5,000,000 steps in Python on a Raspberry Pi 4 Model B
(BCM2711, Cortex-A72 at 1.5 GHz, performance governor) took 158.3 s (C. Mehta, "Performance
Analysis of Languages on Raspberry Pi",
https://chaitanyamehta.github.io/projects/performance-analysis-of-programming-languages). The
ratio of the two times scales the agent's CPU per 1,000 updates/s measured by bench_agent.py on
this machine to a Pi 4 core. Assumptions, stated with the figure: the interpreter work of the
agent (string building, dicts, struct, small objects) slows down like N-body's float loops, and
the Pi ran a CPython of the same speed (it probably ran an older one, so the Pi estimate errs on
the slow side).
"""

from __future__ import annotations

import argparse
import math
import sys
import time

PI_SECONDS = 158.3
PI_STEPS = 5_000_000
SOLAR_MASS = 4 * math.pi * math.pi
DAYS_PER_YEAR = 365.24

# position (AU), velocity (AU/day), mass (solar masses): the sun and the four gas giants
BODIES = [
    ([0.0, 0.0, 0.0], [0.0, 0.0, 0.0], 1.0),
    (
        [4.84143144246472090e00, -1.16032004402742839e00, -1.03622044471123109e-01],
        [1.66007664274403694e-03, 7.69901118419740425e-03, -6.90460016972063023e-05],
        9.54791938424326609e-04,
    ),
    (
        [8.34336671824457987e00, 4.12479856412430479e00, -4.03523417114321381e-01],
        [-2.76742510726862411e-03, 4.99852801234917238e-03, 2.30417297573763929e-05],
        2.85885980666130812e-04,
    ),
    (
        [1.28943695621391310e01, -1.51111514016986312e01, -2.23307578892655734e-01],
        [2.96460137564761618e-03, 2.37847173959480950e-03, -2.96589568540237556e-05],
        4.36624404335156298e-05,
    ),
    (
        [1.53796971148509165e01, -2.59193146099879641e01, 1.79258772950371181e-01],
        [2.68067772490389322e-03, 1.62824170038242295e-03, -9.51592254519715870e-05],
        5.15138902046611451e-05,
    ),
]


def system() -> list[tuple[list[float], list[float], float]]:
    bodies = [
        (list(pos), [v * DAYS_PER_YEAR for v in vel], mass * SOLAR_MASS)
        for pos, vel, mass in BODIES
    ]
    # Give the sun the momentum that makes the system's total zero.
    momentum = [sum(vel[i] * mass for _, vel, mass in bodies) for i in range(3)]
    sun_vel = bodies[0][1]
    for i in range(3):
        sun_vel[i] = -momentum[i] / SOLAR_MASS
    return bodies


def energy(bodies: list[tuple[list[float], list[float], float]]) -> float:
    total = 0.0
    for i, (pos, vel, mass) in enumerate(bodies):
        total += 0.5 * mass * (vel[0] ** 2 + vel[1] ** 2 + vel[2] ** 2)
        for other_pos, _, other_mass in bodies[i + 1 :]:
            distance = math.dist(pos, other_pos)
            total -= mass * other_mass / distance
    return total


def advance(bodies: list[tuple[list[float], list[float], float]], steps: int, dt: float) -> None:
    pairs = [(bodies[i], bodies[j]) for i in range(len(bodies)) for j in range(i + 1, len(bodies))]
    for _ in range(steps):
        for (p1, v1, m1), (p2, v2, m2) in pairs:
            dx = p1[0] - p2[0]
            dy = p1[1] - p2[1]
            dz = p1[2] - p2[2]
            magnitude = dt * (dx * dx + dy * dy + dz * dz) ** -1.5
            b1 = m1 * magnitude
            b2 = m2 * magnitude
            v1[0] -= dx * b2
            v1[1] -= dy * b2
            v1[2] -= dz * b2
            v2[0] += dx * b1
            v2[1] += dy * b1
            v2[2] += dz * b1
        for pos, vel, _ in bodies:
            pos[0] += dt * vel[0]
            pos[1] += dt * vel[1]
            pos[2] += dt * vel[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=PI_STEPS)
    args = parser.parse_args()
    bodies = system()
    before = energy(bodies)
    started = time.process_time()
    advance(bodies, args.steps, 0.01)
    took = time.process_time() - started
    here = took * PI_STEPS / args.steps
    print(f"energy {before:.9f} -> {energy(bodies):.9f} after {args.steps:,} steps")
    print(
        f"this machine: {here:.1f} s CPU for {PI_STEPS:,} steps (Python {sys.version.split()[0]})"
    )
    print(
        f"Raspberry Pi 4 (published): {PI_SECONDS:.1f} s -> a Pi 4 core is "
        f"{PI_SECONDS / here:.1f}x slower at this work"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
