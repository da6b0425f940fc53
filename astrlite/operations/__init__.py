"""What an operator sees: metrics, log formats, the start-up banner."""
