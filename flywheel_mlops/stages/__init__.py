"""One module per ML stage: plain typed functions that the KFP components and tests call."""
