"""Tools for developers and operators, outside the served import path:
ranking evaluation, the benchmark, the load test."""
