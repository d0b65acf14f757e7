"""The training side of the loop: one module per stage, the step glue the KFP components call,
and the two ways to run the pipeline (the KFP local runner, a KFP cluster)."""
