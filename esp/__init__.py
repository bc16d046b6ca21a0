"""The ESP node: a long-running process that serves the market's jobs with its own key (docs/esp-node.md).

`esp.node.EspNode` runs the loop, `esp.jobs.JobStore` keeps every job it accepted in SQLite so that a
restart resumes them, `esp.placement.NodeEngine` places each job on the node's own edge servers with
the offloading core.
"""
