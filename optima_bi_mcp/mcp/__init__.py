"""The MCP layer: tools, resources and prompts over the metrics, and the commands serving them."""
