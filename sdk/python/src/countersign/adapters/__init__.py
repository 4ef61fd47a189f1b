"""Adapters that put the countersign gateway in front of an agent framework's
tools. Each is a small module importing its framework only when used:
`countersign.adapters.openai_agents`, `.langchain`, `.pydantic_ai`.

They are in-process: an agent that calls the tool's target some other way is
not stopped by them. Enforce at the gateway's database, HTTP, Kubernetes and
MCP endpoints.
"""
