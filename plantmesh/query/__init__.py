"""`plantmesh query`: the questions engineers ask most, over InfluxQL or Flux, plus raw queries.

    plantmesh query last --plant plant-a [--machine press-01]      newest reading of every signal
    plantmesh query series --signal bearing_temp --since 1h [--every 1m] [--plant P] [--machine M]
    plantmesh query completeness [--plant P]                       per gateway and plant
    plantmesh query influxql "SELECT ..."                          any InfluxQL statement
    plantmesh query flux 'from(bucket: "plantmesh/autogen") |> ...' any Flux query

Every option common to the questions (--url, --db, --bucket, --token-file, --token, --format,
--flux, --show, --timeout) goes before or after the question. Standard library only
(plantmesh.influxql): it works wherever plantmesh is installed. Modules: `cli` (options, the run),
`statements` (what each question asks), `answers` (one table per question, the same from either
language), `formats` (table, csv, json), `hints` (what to say when nothing came back).
"""

from __future__ import annotations

from plantmesh.query.cli import register

__all__ = ["register"]
