"""Pipeline definitions and their compiled KFP IR YAML."""
