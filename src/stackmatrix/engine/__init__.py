"""engine: everything that talks to the Docker engine or runs a process.

Owns: the docker client, its streams and its errors (``docker``), every unique image pulled
or built once before the fan-out (``prepare``), one compose project's bring-up, readiness,
ports, logs and teardown (``stack``, its containers' states in ``services``, its event stream
in ``events``), readiness probes (``probes``), resource statistics (``stats``), the test
command against a stack (``suite``), what a variant needs (``job``), the life of one variant
from render to down (``lifecycle``), the schedule of many (``scheduler``), stacks held up for
a person (``held``), leftovers by label (``gc``), every non-Docker subprocess
(``processes``), and how each process is started, in a session of its own (``spawn``).

May import: ``junit``, ``results``, ``compose``, ``matrix``, ``spec``, ``redact``, ``errors``,
``format``, and python-on-whales. Never ``report``, ``ci`` or ``console``: what the run's end
needs (plots, the console) is handed in by the caller (``RunObserver``, ``StatsHook``).
"""
