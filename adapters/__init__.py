"""The edges of policybot: Slack, Teams, the console, and the HTTP server that hosts the platforms."""

import os

# numpy's OpenBLAS starts a thread per core when imported and keeps them spinning after each matrix
# product; the matcher's products are tiny (the confidence fit's 9x9 Newton steps), so those threads
# only burn CPU the machine's other processes need: about 0.1 s of a `policybot ask` and 0.1-0.2 s of
# a `serve` start (bench/bench_cli.py, bench/bench_startup.py). Set before anything imports numpy
# (every entry point imports this package first); an operator's own setting wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
