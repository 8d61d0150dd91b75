"""Scoring an alert log: ISA-18.2 alarm-load figures (alarm_figures), and against a simulator's
ground truth, precision, recall and detection latency (score, with matching's pairing rules and
truth's file format). Pure: the simulators' `plantmesh sim score` and alerting's backtests share
it, so both count the same way."""
