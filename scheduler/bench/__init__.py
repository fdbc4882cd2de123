"""`berth bench`: berth, upstream kube-scheduler and a null binder side by side.

Each scheduler run gets a fresh control plane (scheduler.harness.plane) with the workload's
nodes; the scheduler under test is started as its own process once the nodes exist, so its CPU
and memory can be read from /proc on their own; the pods are created as fast as the API server
takes them while a watch records when each one is bound.

    command    the argparse arguments and the entry point (`berth bench ...`)
    workloads  node and pod sets modelled on upstream scheduler_perf (pure)
    runner     one run: cluster up, nodes, scheduler process, create + watch, cluster down
    processes  how berth, kube-scheduler and the null binder are started and stopped
    nullbinder the reference binder: round-robin binds on berth's client stack, no scheduling
    procstat   CPU seconds and peak RSS from /proc (pure parsers + readers)
    stats      percentiles, the per-scheduler summary, aggregation over repeats, checks (pure)
    gangcheck  the independent check of gangs: groups left partially bound (pure)
    claimcheck the independent check of claims: no device or volume given twice or on
               another node, no pod bound without its claims (pure)
    report     bench.json, report.md and bench.png
    progress   the progress bar on stderr
    inmemory   the same engine and plugins with no API server (`--in-memory`)

Nothing in this package is imported by the scheduler itself; importing it is cheap (the heavy
modules load when a command runs).
"""
