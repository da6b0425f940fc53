"""A chat turn: provider events → wire events (turn) → bot history rows (accumulator)."""
