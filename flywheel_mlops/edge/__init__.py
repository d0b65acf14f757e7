"""What both HTTP servers (the predictor and the prediction service) enforce at their edge."""
