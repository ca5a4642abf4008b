"""policybot's platform-neutral core: knowledge base, matching, conversation, tips and storage."""

__version__ = "0.1.0"
