"""The whole loop as one story: normal days, a highway closure, drift seen, a retrained model
rolled out as a canary and promoted, error back down. `flywheel demo` runs it."""
