"""Real servers on 127.0.0.1 speaking the real wire formats, for outbound-client tests."""
