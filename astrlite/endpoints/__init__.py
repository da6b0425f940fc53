"""One module per API area; each exposes routes(services) -> {path: {method: handler}}."""
