"""The edges of policybot: Slack, Teams, the console, and the HTTP server that hosts the platforms."""
