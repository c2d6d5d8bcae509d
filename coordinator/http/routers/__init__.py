"""HTTP routers. Thin: they translate between the Coordinator facade and the schemas."""
