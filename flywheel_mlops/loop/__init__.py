"""The loop's steps after a monitor decision: start a retrain, take one rollout step.

`flywheel monitor` (the CronJob), `flywheel rollout` and the demo call these; the command line
only parses options and prints.
"""
