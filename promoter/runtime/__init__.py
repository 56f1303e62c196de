"""The runtime: NATS JetStream bus, KV state, workers, and the commands that talk to them."""
