"""What operators watch: health endpoints, Prometheus metrics, structured logs."""
