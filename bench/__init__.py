"""hobguard's benchmarks: `python -m bench [--quick] [--only NAME ...]`.

Each benchmark measures one or more *figures* (simulator speed, gas-off
times, firmware footprint, MQTT command latency, bridge resource use),
repeats the measurement, and reports the median with the command that
produced it. `python -m bench` prints a table and writes
bench/results.json. Benchmarks are measurements, not tests: nothing here
fails because a number is slow. See docs/benchmarks.md.
"""
